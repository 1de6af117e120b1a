"""After MLM pretraining and the best encoder's export: metrics.json and report.md in OUTPUT."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.pretrain.config import PretrainJob


def finish(best: dict, history: list[dict], job: PretrainJob, output: Path, eval_rows: int) -> dict:
    """Write `metrics.json` + `report.md` (with the curves) into the local folder `output` beside the exported
    encoder (OUTPUT itself, or its staging folder when OUTPUT is a URI)."""
    from kobert_ops.report import plot_training_curves

    summary = {
        "output": job.cluster.output,
        "objective": "masked-language-model (15% of tokens; 80% [MASK], 10% random, 10% kept)",
        "best": {k: v for k, v in best.items() if k != "train_loss_curve"},
        "history": history,
        "run": {"model": job.model.model, "data": job.data.data, "exclude": job.data.exclude,
                "train_rows": job.train_rows, "eval_rows": eval_rows, "num_workers": job.cluster.num_workers,
                "epochs": job.training.epochs, "batch_size_per_worker": job.training.batch_size,
                "learning_rate": job.training.learning_rate, "max_length": job.data.max_length,
                "seed": job.training.seed},
    }
    (output / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    # the shared plot reads eval_loss / eval_accuracy: here they are the masked-token ones
    plotted = [{**entry, "eval_loss": entry["eval_mlm_loss"], "eval_accuracy": entry["eval_mlm_accuracy"]}
               for entry in history]
    plot_training_curves(plotted, output / "pretraining_curves.png")
    lines = [
        f"# MLM pretraining: {job.model.model}", "",
        f"{job.train_rows:,} texts ({eval_rows:,} held out), {job.training.epochs} epoch(s), "
        f"{job.cluster.num_workers} worker(s). Best epoch {best['epoch']}: masked-token loss "
        f"{best['eval_mlm_loss']:.3f}, accuracy {best['eval_mlm_accuracy']:.3f}.", "",
        "![loss and masked-token accuracy](pretraining_curves.png)", "",
        "| epoch | train loss | eval MLM loss | eval MLM accuracy | samples/s |", "|---:|---:|---:|---:|---:|",
        *[f"| {e['epoch']} | {e['train_loss']:.3f} | {e['eval_mlm_loss']:.3f} | {e['eval_mlm_accuracy']:.3f} | "
          f"{e['train_samples_per_s']:.0f} |" for e in history],
        "", f"Fine-tune it: `kobert train --model {job.cluster.output} --train … --eval …`", "",
    ]
    (output / "report.md").write_text("\n".join(lines))
    return summary
