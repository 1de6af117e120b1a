"""Metrics agree with scikit-learn and never turn an empty class into NaN."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix as sk_confusion, f1_score, precision_score, recall_score

from kobert_ops.metrics import classification_metrics, confusion_matrix, metrics_from_confusion


def test_matches_sklearn_on_three_classes():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, size=500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 3, size=500))
    metrics = classification_metrics(y_true, y_pred, ["부정", "중립", "긍정"])
    assert metrics["n"] == 500
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert metrics["confusion_matrix"] == sk_confusion(y_true, y_pred, labels=[0, 1, 2]).tolist()
    precision = precision_score(y_true, y_pred, average=None)
    recall = recall_score(y_true, y_pred, average=None)
    for idx, label in enumerate(["부정", "중립", "긍정"]):
        assert metrics["per_class"][label]["precision"] == pytest.approx(precision[idx])
        assert metrics["per_class"][label]["recall"] == pytest.approx(recall[idx])
        assert metrics["per_class"][label]["support"] == int((y_true == idx).sum())


def test_class_never_predicted_scores_zero_not_nan():
    metrics = classification_metrics([0, 0, 1, 1], [0, 0, 0, 0], ["neg", "pos"])
    assert metrics["per_class"]["pos"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert metrics["macro_f1"] == pytest.approx(f1_score([0, 0, 1, 1], [0, 0, 0, 0], average="macro", zero_division=0))
    assert metrics["accuracy"] == 0.5


def test_confusion_matrices_add_up_across_shards():
    """Distributed evaluation sums per-rank matrices; the sum must equal the matrix of all rows."""
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    summed = confusion_matrix(y_true[:37], y_pred[:37], 2) + confusion_matrix(y_true[37:], y_pred[37:], 2)
    assert (summed == confusion_matrix(y_true, y_pred, 2)).all()
    assert metrics_from_confusion(summed)["labels"] == ["0", "1"]


def test_label_outside_the_model_is_an_error():
    with pytest.raises(ValueError, match="label ids"):
        confusion_matrix([0, 2], [0, 1], num_labels=2)
