"""`kobert pretrain`: masked-language-model pretraining of a KoBERT-architecture encoder with Ray Train.

    kobert pretrain --model small --data ../shared/data/nsmc/reviews.parquet --num-workers 1 --epochs 2 \\
        --exclude data/nsmc/test.parquet --output runs/nsmc-mlm
    kobert train --model runs/nsmc-mlm --train data/nsmc/train.parquet --eval data/nsmc/eval.parquet ...

Real KoBERT weights are not reachable everywhere, and adapting an encoder to a team's own reviews pays
anyway: OUTPUT is a `BertForMaskedLM` directory (with the tokenizer) that `kobert train --model` takes,
adding a fresh classification head. Runs on `RAY_ADDRESS` when set, else on a local Ray; DDP, checkpoints,
`--resume` and fault recovery work as in `kobert train` (the same core, `pipelines.core`). This module only
parses and prints: the run itself is `pipelines.pretrain.run.pretrain`.
"""

from __future__ import annotations

import argparse

from pipelines.args import add_dataclass_arguments
from pipelines.core.command import run_and_print
from pipelines.core.config import ClusterConfig, TrainingConfig
from pipelines.pretrain.config import PretrainDataConfig, PretrainJob, PretrainModelConfig

HELP = "masked-language-model pretraining of a KoBERT encoder on unlabeled text (Ray Train)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, PretrainModelConfig, "model")
    add_dataclass_arguments(parser, PretrainDataConfig, "data")
    add_dataclass_arguments(parser, TrainingConfig, "training", exclude=("metric",))  # always eval_mlm_loss
    add_dataclass_arguments(parser, ClusterConfig, "cluster")


def run(args: argparse.Namespace) -> int:
    from pipelines.pretrain.run import pretrain

    job = PretrainJob.from_args(args)
    return run_and_print("pretrain", pretrain, job, ("eval_mlm_loss", "eval_mlm_accuracy", "train_samples_per_s"))
