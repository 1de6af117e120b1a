"""After `trainer.fit()` and the best model's export: metrics.json and report.md in OUTPUT.

Runs on the driver, the one process that sees the final result, so these side effects happen exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.train.config import TrainJob


def finish(best: dict, history: list[dict], job: TrainJob, output: Path) -> dict:
    """Write `metrics.json` + `report.md` (with plots) into the local folder `output` beside the exported best
    model (OUTPUT itself, or its staging folder when OUTPUT is a URI)."""
    from kobert_ops.report import write_training_report

    summary = {
        "output": job.cluster.output,
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
            "tokenizer": job.tokenizer_dir,
            "shuffle": job.training.shuffle,
            "seed": job.training.seed,
        },
    }
    (output / "metrics.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_training_report(output, summary)
    return summary
