"""Training and evaluation reports a person would rather look at than read: `report.md` plus PNG plots.

Plots use matplotlib's Agg backend (no display needed on cluster nodes). Label names are often Korean: plots
draw them with an installed Hangul font or the NanumGothic that `koreanize-matplotlib` ships; without either
(the package removed) they show label ids, and the markdown maps ids to names.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

HANGUL_FONTS = ("NanumGothic", "Noto Sans CJK KR", "Noto Sans KR", "Malgun Gothic", "AppleGothic", "UnDotum")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@lru_cache(maxsize=1)
def _hangul_font() -> str | None:
    from matplotlib import font_manager

    _register_bundled_font(font_manager)
    for name in HANGUL_FONTS:
        try:
            font_manager.findfont(name, fallback_to_default=False)
            return name
        except ValueError:
            continue
    return None


def _register_bundled_font(font_manager) -> None:
    """Make NanumGothic from the `koreanize-matplotlib` package known to matplotlib, without importing that
    package (its import changes matplotlib's global defaults). Most servers have no Hangul font installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("koreanize_matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        font = Path(folder) / "fonts" / "NanumGothic.ttf"
        if font.exists():
            font_manager.fontManager.addfont(str(font))


def plot_labels(labels: Sequence[str]) -> tuple[list[str], dict]:
    """Tick labels a plot can draw, and font properties: names if drawable, else ids."""
    if all(str(label).isascii() for label in labels):
        return [str(label) for label in labels], {}
    font = _hangul_font()
    if font:
        return [str(label) for label in labels], {"fontfamily": font}
    return [str(i) for i in range(len(labels))], {}


def plot_confusion_matrix(matrix, labels: Sequence[str], path: str | Path, title: str = "Confusion matrix") -> Path:
    """Heat map of counts with row-normalised percentages written in each cell."""
    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=np.int64)
    row_share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ticks, font = plot_labels(labels)
    size = max(3.5, 1.1 * len(labels) + 1.5)
    figure, axes = plt.subplots(figsize=(size + 0.8, size))
    image = axes.imshow(row_share, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true label")
    for (row, col), count in np.ndenumerate(matrix):
        color = "white" if row_share[row, col] > 0.5 else "black"
        axes.text(col, row, f"{count}\n{row_share[row, col]:.0%}", ha="center", va="center", color=color, fontsize=9)
    axes.set_xticks(range(len(ticks)), ticks, **font)
    axes.set_yticks(range(len(ticks)), ticks, **font)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def plot_training_curves(history: Sequence[dict], path: str | Path) -> Path:
    """Loss against optimizer steps (train: rank 0's batches, smoothed; eval: at each epoch's end) and eval
    accuracy / macro-F1 per epoch, side by side. Without step curves, losses are plotted per epoch."""
    plt = _pyplot()
    epochs = [entry["epoch"] for entry in history]
    figure, (loss_axes, score_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    curve = [point for entry in history for point in entry.get("train_loss_curve", [])]
    by_step = bool(curve) and all("global_step" in entry for entry in history)
    if by_step:
        loss_axes.plot([p[0] for p in curve], [p[1] for p in curve], label="train (rank 0)", linewidth=1.2)
        ends = [entry["global_step"] for entry in history]
        loss_axes.plot(ends, [entry.get("eval_loss") for entry in history], marker="o", label="eval")
        for end in ends[:-1]:
            loss_axes.axvline(end, color="grey", alpha=0.3, linewidth=0.8)  # epoch boundaries
        loss_axes.set_xlabel("optimizer step")
    else:
        for key, name in (("train_loss", "train"), ("eval_loss", "eval")):
            values = [entry.get(key) for entry in history]
            if any(v is not None for v in values):
                loss_axes.plot(epochs, values, marker="o", label=name)
        loss_axes.set_xlabel("epoch")
        loss_axes.set_xticks(epochs)
    loss_axes.set_ylabel("cross-entropy loss")
    loss_axes.set_title("Loss")
    loss_axes.legend()
    for key, name in (("eval_accuracy", "accuracy"), ("eval_macro_f1", "macro-F1")):
        values = [entry.get(key) for entry in history]
        if any(v is not None for v in values):
            score_axes.plot(epochs, values, marker="o", label=name)
    score_axes.set_xlabel("epoch")
    score_axes.set_ylim(0.0, 1.0)
    score_axes.set_title("Evaluation")
    score_axes.legend()
    score_axes.set_xticks(epochs)
    for axes in (loss_axes, score_axes):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def _class_table(metrics: dict) -> list[str]:
    lines = ["| id | label | precision | recall | F1 | support |", "|---:|---|---:|---:|---:|---:|"]
    for idx, label in enumerate(metrics["labels"]):
        row = metrics["per_class"][label]
        lines.append(
            f"| {idx} | {label} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |"
        )
    return lines


def write_evaluation_report(directory: str | Path, metrics: dict, title: str = "Evaluation") -> Path:
    """`report.md` + `confusion_matrix.png` + `metrics.json` for one evaluation."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrix(metrics["confusion_matrix"], metrics["labels"], directory / "confusion_matrix.png")
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    lines = [
        f"# {title}",
        "",
        f"**accuracy {metrics['accuracy']:.4f}** · macro-F1 {metrics['macro_f1']:.4f} · {metrics['n']:,} rows",
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        *_class_table(metrics),
        "",
    ]
    path = directory / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_training_report(directory: str | Path, summary: dict) -> Path:
    """`report.md` + `training_curves.png` + `confusion_matrix.png` for a fine-tuning run.

    Args:
        summary: the run's `metrics.json` content: `history` (one dict per epoch with `epoch`,
            `train_loss`, `eval_loss`, `eval_accuracy`, `eval_macro_f1`, ...), `best` (the chosen epoch's
            entry) and `best_eval` (its full `metrics_from_confusion` dict), plus free-form `run` settings.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    history = summary["history"]
    best_eval = summary["best_eval"]
    plot_training_curves(history, directory / "training_curves.png")
    plot_confusion_matrix(
        best_eval["confusion_matrix"], best_eval["labels"], directory / "confusion_matrix.png",
        title=f"Eval confusion matrix (epoch {summary['best']['epoch']})",
    )
    lines = [
        "# Fine-tuning report",
        "",
        f"**Best epoch {summary['best']['epoch']}: accuracy {best_eval['accuracy']:.4f} · "
        f"macro-F1 {best_eval['macro_f1']:.4f}** on {best_eval['n']:,} eval rows "
        f"(chosen by `{summary.get('selection_metric', 'eval_macro_f1')}`).",
        "",
        "![training curves](training_curves.png)",
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "## Per class (best epoch)",
        "",
        *_class_table(best_eval),
        "",
        "## Epochs",
        "",
        "| epoch | train loss | eval loss | accuracy | macro-F1 | samples/s | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in history:
        lines.append(
            f"| {entry['epoch']} | {entry.get('train_loss', float('nan')):.4f} | "
            f"{entry.get('eval_loss', float('nan')):.4f} | {entry.get('eval_accuracy', float('nan')):.4f} | "
            f"{entry.get('eval_macro_f1', float('nan')):.4f} | {entry.get('train_samples_per_s', float('nan')):.1f} | "
            f"{entry.get('epoch_seconds', float('nan')):.1f} |"
        )
    if summary.get("run"):
        lines += ["", "## Run", "", "```json", json.dumps(summary["run"], indent=2, ensure_ascii=False), "```"]
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
