"""`kobert train`: fine-tune a classifier with Ray Train (DDP: gloo on CPU, NCCL on GPUs).

    kobert train --model tiny --train data/nsmc/train.parquet --eval data/nsmc/eval.parquet \\
        --num-workers 2 --epochs 3 --output runs/nsmc-tiny
    kobert train --model skt/kobert-base-v1 --train s3://bucket/nsmc/train --eval s3://bucket/nsmc/eval \\
        --num-workers 8 --use-gpu --storage-path s3://bucket/checkpoints --output runs/nsmc-base
    kobert train ... --output runs/nsmc-tiny --resume      # continue an interrupted run

Runs on the cluster at `RAY_ADDRESS` when set, else starts a local Ray. OUTPUT ends up holding the best
epoch's model (a plain `transformers` directory that `kobert label`/`kobert evaluate` load), `metrics.json`,
`report.md` with plots, and `checkpoints/` (Ray Train's storage, unless `--storage-path` says otherwise).
This module only parses and prints: the run itself is `pipelines.train.run.train`.
"""

from __future__ import annotations

import argparse

from pipelines.args import add_dataclass_arguments
from pipelines.core.command import run_and_print
from pipelines.train.config import ClusterConfig, DataConfig, ModelConfig, TrainingConfig, TrainJob

HELP = "fine-tune a classifier (KoBERT or any BERT/RoBERTa/ELECTRA encoder) with Ray Train (DDP on CPU or GPU)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, ModelConfig, "model")
    add_dataclass_arguments(parser, DataConfig, "data")
    add_dataclass_arguments(parser, TrainingConfig, "training")
    add_dataclass_arguments(parser, ClusterConfig, "cluster")


def run(args: argparse.Namespace) -> int:
    from pipelines.train.run import train

    job = TrainJob.from_args(args)
    return run_and_print("train", train, job, ("eval_accuracy", "eval_macro_f1", "train_samples_per_s"))
