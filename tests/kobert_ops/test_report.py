"""Reports: markdown that names the numbers and labels, and real PNG plots next to it."""

import json

from kobert_ops.metrics import classification_metrics
from kobert_ops.report import write_evaluation_report, write_training_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _history():
    entries = []
    for epoch, (loss, accuracy) in enumerate([(0.69, 0.61), (0.52, 0.74), (0.45, 0.78)], start=1):
        entries.append({"epoch": epoch, "train_loss": loss, "eval_loss": loss + 0.05, "eval_accuracy": accuracy,
                        "eval_macro_f1": accuracy - 0.01, "train_samples_per_s": 400.0, "epoch_seconds": 15.0})
    return entries


def test_training_report_has_curves_confusion_matrix_and_tables(tmp_path):
    best_eval = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 2], ["부정", "중립", "긍정"])
    summary = {"history": _history(), "best": _history()[-1], "best_eval": best_eval,
               "selection_metric": "eval_macro_f1", "run": {"model": "tiny"}}
    report = write_training_report(tmp_path, summary).read_text()
    for name in ("training_curves.png", "confusion_matrix.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
        assert f"({name})" in report
    assert "Best epoch 3" in report and "0.8000" in report  # accuracy of best_eval: 4 of 5
    assert "| 1 | 중립 |" in report  # ids map to names even when the plot shows ids


def test_evaluation_report(tmp_path):
    metrics = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos"])
    report = write_evaluation_report(tmp_path, metrics).read_text()
    assert (tmp_path / "confusion_matrix.png").read_bytes().startswith(PNG_MAGIC)
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == 0.75
    assert "accuracy 0.7500" in report


def test_step_loss_curves_are_plotted(tmp_path):
    history = _history()
    for entry in history:
        entry["global_step"] = 10 * entry["epoch"]
        entry["train_loss_curve"] = [[10 * entry["epoch"] - 5, entry["train_loss"] + 0.1], [10 * entry["epoch"], entry["train_loss"]]]
    best_eval = classification_metrics([0, 1], [0, 1], ["neg", "pos"])
    write_training_report(tmp_path, {"history": history, "best": history[-1], "best_eval": best_eval})
    assert (tmp_path / "training_curves.png").read_bytes().startswith(PNG_MAGIC)


def test_korean_label_names_are_drawn_with_a_hangul_font():
    from kobert_ops.report import plot_labels

    ticks, font = plot_labels(["부정", "긍정"])
    assert ticks == ["부정", "긍정"] and font  # the bundled NanumGothic (koreanize-matplotlib) is a dependency
