"""`kobert train`: fine-tune a KoBERT classifier with Ray Train (DDP: gloo on CPU, NCCL on GPUs).

    kobert train --model tiny --train data/nsmc/train.parquet --eval data/nsmc/eval.parquet \\
        --num-workers 2 --epochs 3 --output runs/nsmc-tiny
    kobert train --model skt/kobert-base-v1 --train s3://bucket/nsmc/train --eval s3://bucket/nsmc/eval \\
        --num-workers 8 --use-gpu --storage-path s3://bucket/checkpoints --output runs/nsmc-base
    kobert train ... --output runs/nsmc-tiny --resume      # continue an interrupted run

Runs on the cluster at `RAY_ADDRESS` when set, else starts a local Ray. OUTPUT ends up holding the best
epoch's model (a plain `transformers` directory that `kobert label`/`kobert evaluate` load), `metrics.json`,
`report.md` with plots, and `checkpoints/` (Ray Train's storage, unless `--storage-path` says otherwise).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pipelines.args import add_dataclass_arguments, dataclass_from_args
from pipelines.train.config import (FINE_TUNE_LEARNING_RATE, METRICS, SCRATCH_LEARNING_RATE, ClusterConfig, DataConfig,
                                    ModelConfig, TrainingConfig, TrainJob)

log = logging.getLogger(__name__)
HELP = "fine-tune a KoBERT classifier with Ray Train (DDP on CPU or GPU)"
FAULT_ENV = "KOBERT_FAULT_AFTER_EPOCH"


class TrainingFailed(RuntimeError):
    """Ray Train gave up (failures beyond --max-failures); the checkpoints so far are kept for --resume."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, ModelConfig, "model")
    add_dataclass_arguments(parser, DataConfig, "data")
    add_dataclass_arguments(parser, TrainingConfig, "training")
    add_dataclass_arguments(parser, ClusterConfig, "cluster")


def run(args: argparse.Namespace) -> int:
    job = TrainJob(
        model=dataclass_from_args(ModelConfig, args),
        data=dataclass_from_args(DataConfig, args),
        training=dataclass_from_args(TrainingConfig, args),
        cluster=dataclass_from_args(ClusterConfig, args),
    )
    try:
        summary = train(job)
    except TrainingFailed as error:
        print(f"kobert train: error: {error}", file=sys.stderr)
        return 1
    best = summary["best"]
    print(json.dumps({"output": summary["output"], "best_epoch": best["epoch"],
                      "eval_accuracy": best["eval_accuracy"], "eval_macro_f1": best["eval_macro_f1"],
                      "train_samples_per_s": best["train_samples_per_s"]}, ensure_ascii=False))
    return 0


def _local(path: str) -> str:
    """Absolute form of a local path (workers do not share the driver's working directory); URIs unchanged."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def resolve_tokenizer(model: ModelConfig) -> str:
    from kobert_ops import paths
    from kobert_ops.model import PRESETS

    if model.tokenizer:
        return _local(model.tokenizer) if Path(model.tokenizer).exists() else model.tokenizer
    if model.model not in PRESETS and Path(model.model, "tokenizer_config.json").is_file():
        return _local(model.model)
    return str(paths.require(paths.kobert_tokenizer_dir(), "KoBERT tokenizer").resolve())


def resolve_labels(job: TrainJob) -> list[str]:
    """--labels, else labels.json beside the training data, else the model's own, else the data's."""
    from kobert_ops.model import PRESETS
    from pipelines.train.data import labels_beside, labels_from_data

    if job.model.labels:
        return list(job.model.labels)
    labels = labels_beside(job.data.train)
    if labels:
        return labels
    if job.model.model not in PRESETS:
        from transformers import AutoConfig

        from kobert_ops import hub

        config = AutoConfig.from_pretrained(hub.resolve(job.model.model, allow_patterns=["*.json"]))
        if any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
            return [config.id2label[i] for i in sorted(config.id2label)]
    import ray.data

    return labels_from_data(ray.data.read_parquet(job.data.train), job.data.label_column)


def connect_ray(cluster: ClusterConfig) -> bool:
    """Join `RAY_ADDRESS` (or an already initialised Ray), else start a local one; True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"])
        return False
    cpus = os.cpu_count() or 1
    needed = (cluster.cpus_per_worker or max(1, cpus // cluster.num_workers)) * cluster.num_workers
    # one CPU beyond the workers' for Ray Data's read tasks (logical CPUs: oversubscribing is harmless)
    ray.init(num_cpus=max(cpus, needed + 1))
    return True


def prepare_run_dir(cluster: ClusterConfig) -> None:
    """Refuse to silently continue (or clobber) an earlier run; `--resume` needs one to exist."""
    storage = Path(cluster.storage_path) / cluster.run_name
    if "://" in cluster.storage_path:
        return  # remote storage: Ray Train resumes from whatever snapshot is there
    exists = (storage / "checkpoint_manager_snapshot.json").exists()
    if cluster.resume and not exists:
        raise FileNotFoundError(f"--resume: no earlier run at {storage}")
    if not cluster.resume and exists:
        raise ValueError(f"{storage} already holds a run: pass --resume to continue it, or use another --output")


def resolve_job(job: TrainJob) -> None:
    """Driver-side defaults: absolute paths, storage under OUTPUT, learning rate by model kind, fault hook."""
    from kobert_ops.model import PRESETS

    cluster = job.cluster
    cluster.output = _local(cluster.output)
    cluster.storage_path = _local(cluster.storage_path or str(Path(cluster.output) / "checkpoints"))
    job.data.train, job.data.eval = _local(job.data.train), _local(job.data.eval)
    if Path(job.model.model).exists():
        job.model.model = _local(job.model.model)
    if job.training.learning_rate is None:
        scratch = job.model.model in PRESETS
        job.training.learning_rate = SCRATCH_LEARNING_RATE if scratch else FINE_TUNE_LEARNING_RATE
    if os.environ.get(FAULT_ENV):
        job.fault_after_epoch = int(os.environ[FAULT_ENV])


def worker_env_vars(use_gpu: bool) -> dict[str, str]:
    """Environment of the training workers.

    On CPU, OpenMP threads that spin while waiting for each other collapse when a core is busy with anything
    else (Ray Data, another worker, another job): measured on 2 shared cores, a tiny model trained at 66
    samples/s with 2 spinning threads and 582 with `OMP_WAIT_POLICY=PASSIVE`. A user's own setting wins.
    """
    if use_gpu:
        return {}
    return {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def build_trainer(job, datasets: dict, loop=None, metric: str | None = None, order: str | None = None):
    """A `TorchTrainer` running `loop` (default: `train_loop_per_worker`) with the job's scaling, checkpoint and
    failure policy; checkpoints are ranked by `metric` in `order` (default: `--metric`). Pretraining reuses it."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from pipelines.train.loop import train_loop_per_worker

    loop = loop or train_loop_per_worker
    metric = metric or job.training.metric
    order = order or METRICS[metric]
    cluster = job.cluster
    use_gpu = cluster.use_gpu if cluster.use_gpu is not None else ray.cluster_resources().get("GPU", 0) > 0
    if not cluster.cpus_per_worker:
        on_cluster = bool(os.environ.get("RAY_ADDRESS")) or use_gpu
        cluster.cpus_per_worker = 1 if on_cluster else max(1, (os.cpu_count() or 1) // cluster.num_workers)
    log.info("training %s on %d rows, labels %s, %d worker(s) × %d CPU%s", job.model.model, job.train_rows,
             getattr(job, "labels", None), cluster.num_workers, cluster.cpus_per_worker, " + 1 GPU" if use_gpu else "")
    return TorchTrainer(
        loop,
        train_loop_config=job.to_dict(),
        scaling_config=ScalingConfig(num_workers=cluster.num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cluster.cpus_per_worker}),
        run_config=RunConfig(
            name=cluster.run_name,
            storage_path=cluster.storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=cluster.keep_checkpoints,
                                               checkpoint_score_attribute=metric,
                                               checkpoint_score_order=order),
            failure_config=FailureConfig(max_failures=cluster.max_failures),
            worker_runtime_env={"env_vars": worker_env_vars(use_gpu)},
        ),
        datasets=datasets,
    )


def train(job: TrainJob) -> dict:
    """Run the whole job on Ray; export the best epoch's model and write metrics and report."""
    import ray

    from pipelines.train.data import read_dataset
    from pipelines.train.report import finish

    resolve_job(job)
    prepare_run_dir(job.cluster)
    started_ray = connect_ray(job.cluster)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False  # one log line per epoch is enough
        columns = [job.data.text_column, job.data.label_column]
        datasets = {"train": read_dataset(job.data.train, columns), "eval": read_dataset(job.data.eval, columns)}
        job.labels = resolve_labels(job)
        job.train_rows = datasets["train"].count()
        job.tokenizer_dir = resolve_tokenizer(job.model)
        trainer = build_trainer(job, datasets)
        try:
            result = trainer.fit()
        except Exception as error:
            reason = (str(error).strip().splitlines() or [""])[0][:300]
            raise TrainingFailed(f"training failed ({type(error).__name__}: {reason}); the latest checkpoint is "
                                 f"kept: rerun the same command with --resume to continue") from error
        return finish(result, job)
    finally:
        if started_ray:
            ray.shutdown()
