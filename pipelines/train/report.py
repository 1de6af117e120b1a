"""After `trainer.fit()`: pick the best epoch, export its model into OUTPUT, write metrics.json and report.md.

Runs on the driver, the one process that sees the final result, so these side effects happen exactly once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipelines.train import checkpoint as checkpoints
from pipelines.train.config import METRICS, TrainJob

log = logging.getLogger(__name__)


def best_entry(history: list[dict], metric: str) -> dict:
    """The epoch with the best `metric` (the first of equals)."""
    sign = 1.0 if METRICS[metric] == "max" else -1.0
    return max(history, key=lambda entry: (sign * entry[metric], -entry["epoch"]))


def best_checkpoint(result, epoch: int):
    """The retained checkpoint of `epoch` (Ray Train keeps the best ones by the same metric)."""
    candidates = list(result.best_checkpoints or [])
    for checkpoint, metrics in candidates:
        if metrics.get("epoch") == epoch:
            return checkpoint
    if result.checkpoint is not None:
        log.warning("no retained checkpoint of epoch %d; exporting the latest instead", epoch)
        return result.checkpoint
    raise RuntimeError("the run reported no checkpoint")


def finish(result, job: TrainJob) -> dict:
    """Export the best model and write `metrics.json` + `report.md` (with plots) into OUTPUT."""
    from kobert_ops.report import write_training_report

    if result.checkpoint is None:
        raise RuntimeError("the run finished without a checkpoint")
    with result.checkpoint.as_directory() as directory:
        history = checkpoints.read_history(directory)
    best = best_entry(history, job.training.metric)
    output = Path(job.cluster.output)
    with best_checkpoint(result, best["epoch"]).as_directory() as directory:
        checkpoints.export_model(directory, output)
    summary = {
        "output": str(output),
        "selection_metric": job.training.metric,
        "best": {k: v for k, v in best.items() if k != "eval"},
        "best_eval": best["eval"],
        "history": history,
        "run": {
            "model": job.model.model,
            "labels": job.labels,
            "train": job.data.train,
            "eval": job.data.eval,
            "train_rows": job.train_rows,
            "num_workers": job.cluster.num_workers,
            "epochs": job.training.epochs,
            "batch_size_per_worker": job.training.batch_size,
            "learning_rate": job.training.learning_rate,
            "schedule": job.training.schedule,
            "warmup_ratio": job.training.warmup_ratio,
            "weight_decay": job.training.weight_decay,
            "max_length": job.data.max_length,
            "freeze_encoder": job.model.freeze_encoder,
            "seed": job.training.seed,
        },
    }
    (output / "metrics.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_training_report(output, summary)
    return summary
