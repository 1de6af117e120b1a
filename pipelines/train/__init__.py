"""`kobert train`: fine-tuning on the shared Ray Train core (`pipelines.core`), split by concern.

config (typed options) · data (Ray Data in, bucketed batches out) · objective (the classifier's part of the
core's loop) · run (`train(job)`) · report (metrics.json, report.md) · command (CLI: parse and print).
"""

from pipelines.train.command import HELP, add_arguments, run

__all__ = ["HELP", "add_arguments", "run"]
