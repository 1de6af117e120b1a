"""`kobert pretrain`: masked-language-model pretraining of a KoBERT-architecture encoder with Ray Train.

    kobert pretrain --model small --data ../shared/data/nsmc/reviews.parquet --num-workers 1 --epochs 2 \\
        --exclude data/nsmc/test.parquet --output runs/nsmc-mlm
    kobert train --model runs/nsmc-mlm --train data/nsmc/train.parquet --eval data/nsmc/eval.parquet ...

Real KoBERT weights are not reachable everywhere, and adapting an encoder to a team's own reviews pays
anyway: OUTPUT is a `BertForMaskedLM` directory (with the tokenizer) that `kobert train --model` takes,
adding a fresh classification head. Runs on `RAY_ADDRESS` when set, else on a local Ray; DDP, checkpoints,
`--resume` and fault recovery work as in `kobert train`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipelines.args import add_dataclass_arguments, dataclass_from_args
from pipelines.pretrain.config import SCRATCH_LEARNING_RATE, PretrainDataConfig, PretrainJob, PretrainModelConfig
from pipelines.train.config import FINE_TUNE_LEARNING_RATE, ClusterConfig, TrainingConfig

HELP = "masked-language-model pretraining of a KoBERT encoder on unlabeled text (Ray Train)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, PretrainModelConfig, "model")
    add_dataclass_arguments(parser, PretrainDataConfig, "data")
    add_dataclass_arguments(parser, TrainingConfig, "training", exclude=("metric",))  # always eval_mlm_loss
    add_dataclass_arguments(parser, ClusterConfig, "cluster")


def run(args: argparse.Namespace) -> int:
    from pipelines.train.command import TrainingFailed

    job = PretrainJob(
        model=dataclass_from_args(PretrainModelConfig, args),
        data=dataclass_from_args(PretrainDataConfig, args),
        training=dataclass_from_args(TrainingConfig, args),
        cluster=dataclass_from_args(ClusterConfig, args),
    )
    try:
        summary = pretrain(job)
    except TrainingFailed as error:
        print(f"kobert pretrain: error: {error}", file=sys.stderr)
        return 1
    best = summary["best"]
    print(json.dumps({"output": summary["output"], "best_epoch": best["epoch"],
                      "eval_mlm_loss": best["eval_mlm_loss"], "eval_mlm_accuracy": best["eval_mlm_accuracy"],
                      "train_samples_per_s": best["train_samples_per_s"]}))
    return 0


def resolve_job(job: PretrainJob) -> None:
    from kobert_ops.model import PRESETS
    from pipelines.pretrain.loop import METRIC
    from pipelines.train import command as train_command

    cluster = job.cluster
    cluster.output = train_command._local(cluster.output)
    cluster.storage_path = train_command._local(cluster.storage_path or str(Path(cluster.output) / "checkpoints"))
    job.data.data = train_command._local(job.data.data)
    if job.data.exclude:
        job.data.exclude = train_command._local(job.data.exclude)
    if Path(job.model.model).exists():
        job.model.model = train_command._local(job.model.model)
    if job.training.learning_rate is None:
        job.training.learning_rate = SCRATCH_LEARNING_RATE if job.model.model in PRESETS else FINE_TUNE_LEARNING_RATE
    job.training.metric = METRIC  # checkpoints are ranked by MLM loss, whatever --metric said
    fault = os.environ.get(train_command.FAULT_ENV)
    job.fault_after_epoch = int(fault) if fault else None


def excluded_texts(job: PretrainJob) -> frozenset[str]:
    if not job.data.exclude:
        return frozenset()
    import pyarrow.parquet as pq

    table = pq.read_table(job.data.exclude, columns=[job.data.text_column])
    return frozenset(text for text in table[job.data.text_column].to_pylist() if text)


def build_trainer(job: PretrainJob, datasets: dict):
    """`kobert train`'s trainer with the MLM loop, keeping the checkpoints of lowest eval MLM loss."""
    from pipelines.pretrain.loop import pretrain_loop_per_worker
    from pipelines.train.command import build_trainer as train_trainer

    return train_trainer(job, datasets, loop=pretrain_loop_per_worker, metric=job.training.metric, order="min")


def pretrain(job: PretrainJob) -> dict:
    """Run MLM pretraining; export the checkpoint with the lowest eval MLM loss into OUTPUT."""
    import ray

    from pipelines.pretrain.data import read_texts, split
    from pipelines.pretrain.report import finish
    from pipelines.train.command import TrainingFailed, connect_ray, prepare_run_dir, resolve_tokenizer

    resolve_job(job)
    prepare_run_dir(job.cluster)
    started_ray = connect_ray(job.cluster)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        texts = read_texts(job.data.data, job.data.text_column, job.data.limit)
        train_set, eval_set = split(texts, job.data.text_column, job.data.eval_per_mille, excluded_texts(job))
        datasets = {"train": train_set.materialize(), "eval": eval_set.materialize()}
        job.train_rows = datasets["train"].count()
        job.tokenizer_dir = resolve_tokenizer(job.model)
        try:
            result = build_trainer(job, datasets).fit()
        except Exception as error:
            reason = (str(error).strip().splitlines() or [""])[0][:300]
            raise TrainingFailed(f"pretraining failed ({type(error).__name__}: {reason}); rerun the same command "
                                 f"with --resume to continue from the latest checkpoint") from error
        return finish(result, job, eval_rows=datasets["eval"].count())
    finally:
        if started_ray:
            ray.shutdown()
