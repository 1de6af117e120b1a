"""Classification metrics from a confusion matrix: accuracy, macro-F1, per-class precision/recall/F1.

Everything is derived from one integer confusion matrix, because that is what distributed evaluation can
sum across workers exactly (one all-reduce of a `(K, K)` tensor) before any ratio is taken. numpy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    """`(K, K)` int64 counts; rows are true labels, columns predicted labels.

    Raises:
        ValueError: a label id outside `[0, num_labels)` (a data/model label mismatch, never silently dropped).
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    for name, ids in (("true", y_true), ("predicted", y_pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_labels):
            raise ValueError(f"{name} label ids must lie in [0, {num_labels}), got {ids.min()}..{ids.max()}")
    flat = np.bincount(y_true * num_labels + y_pred, minlength=num_labels * num_labels)
    return flat.reshape(num_labels, num_labels)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio that is 0 where the denominator is 0 (sklearn's `zero_division=0`)."""
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def metrics_from_confusion(matrix: np.ndarray, labels: Sequence[str] | None = None) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the matrix itself, JSON-ready.

    Macro-F1 averages over every class, including one with no true and no predicted rows (F1 0), as
    sklearn's `f1_score(average="macro", labels=range(K), zero_division=0)` does.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    num_labels = matrix.shape[0]
    labels = [str(label) for label in labels] if labels is not None else [str(i) for i in range(num_labels)]
    if matrix.shape != (num_labels, num_labels) or len(labels) != num_labels:
        raise ValueError(f"confusion matrix {matrix.shape} does not match {len(labels)} labels")
    true_positive = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    total = int(matrix.sum())
    return {
        "n": total,
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
    }


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict:
    """`metrics_from_confusion` of label ids, for callers that hold all predictions in one place."""
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(labels)), labels)
