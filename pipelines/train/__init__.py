"""`kobert train`: Ray Train fine-tuning, split by concern.

config (typed options) · data (Ray Data in, bucketed batches out) · loop (the per-rank DDP loop) ·
checkpoint (what a checkpoint holds) · report (best-epoch export, metrics.json, report.md) · command (CLI).
"""

from pipelines.train.command import HELP, add_arguments, run

__all__ = ["HELP", "add_arguments", "run"]
