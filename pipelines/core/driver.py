"""The driver side of every Ray Train command: connect, resolve paths, guard the run folder, fit, wrap
failures, pick the best checkpoint.

    with ray_session(job.cluster):
        datasets = ...                      # Ray Data needs the session
        result = fit(MyObjective, job, datasets)
        export_best(result, MyObjective, job.cluster.output)

`kobert train` and `kobert pretrain` differ only in the objective and the datasets they pass.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from pipelines import console
from pipelines.core import checkpoint as checkpoints
from pipelines.core.objective import path_of
from pipelines.core.storage import absolute, default_run_name, guard_run, join, run_exists
from pipelines.errors import TrainingFailed

log = logging.getLogger(__name__)
FAULT_ENV = "KOBERT_FAULT_AFTER_EPOCH"


def resolve_cluster(cluster) -> None:
    """Absolute output and storage paths, and the run name derived from the output."""
    cluster.output = absolute(cluster.output)
    cluster.storage_path = absolute(cluster.storage_path or join(cluster.output, "checkpoints"))
    cluster.run_name = cluster.run_name or default_run_name(cluster.output)


def fault_after_epoch() -> int | None:
    """The test hook `KOBERT_FAULT_AFTER_EPOCH=N` (see docs/training.md), if set."""
    value = os.environ.get(FAULT_ENV)
    return int(value) if value else None


def stage_is_resumable(cluster) -> bool:
    """True when this output already has a run with checkpoints to continue (the recipe's re-run test)."""
    probe = dataclasses.replace(cluster)
    resolve_cluster(probe)
    return run_exists(probe.storage_path, probe.run_name)


@contextmanager
def ray_session(cluster, paths: dict[str, str | None] | None = None):
    """Join `RAY_ADDRESS` (or an already initialised Ray), else start a local Ray for this command only.

    On a Ray of more than one node, any node-local path among `paths` (flag → path) is refused first
    (`pipelines.core.nodes`): the nodes share only object storage.
    """
    import ray

    from pipelines.core import ray_defaults
    from pipelines.core.nodes import refuse_node_local

    started = False
    if not ray.is_initialized():
        quiet = console.ray_init_options()  # Ray's own lines to the log file, not the console
        if address := ray_defaults.joined_address():
            ray.init(address=address, **quiet)
        else:
            cpus = os.cpu_count() or 1
            needed = (cluster.cpus_per_worker or max(1, cpus // cluster.num_workers)) * cluster.num_workers
            # one CPU beyond the workers' for Ray Data's read tasks (logical CPUs: oversubscribing is harmless)
            ray_defaults.for_own_ray()
            ray.init(address="local", num_cpus=max(cpus, needed + 1), **ray_defaults.own_state_api(dashboard=True),
                     **quiet)
            started = True
        console.note_ray_logs()
    ray.data.DataContext.get_current().enable_progress_bars = False  # the training bar is ours (TrainBar)
    try:
        with console.cpp_lines_to_log():
            refuse_node_local(paths or {})
            yield
    finally:
        if started:
            ray.shutdown()
            ray_defaults.release_state_api()


def worker_env_vars(use_gpu: bool) -> dict[str, str]:
    """Environment of the training workers.

    On CPU, OpenMP threads that spin while waiting for each other collapse when a core is busy with anything
    else (Ray Data, another worker, another job): measured on 2 shared cores, a tiny model trained at 66
    samples/s with 2 spinning threads and 582 with `OMP_WAIT_POLICY=PASSIVE`. A user's own setting wins.
    """
    if use_gpu:
        return {}
    return {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def build_trainer(objective_class, job, datasets: dict, board=None):
    """A `TorchTrainer` running the shared worker loop for `objective_class` with the job's scaling,
    checkpoint retention (by the objective's metric) and failure policy."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from pipelines.core.data import ExactEvalDataConfig
    from pipelines.core.worker import train_loop_per_worker

    cluster = job.cluster
    use_gpu = cluster.use_gpu if cluster.use_gpu is not None else ray.cluster_resources().get("GPU", 0) > 0
    if not cluster.cpus_per_worker:
        from pipelines.core.nodes import default_cpus_per_worker

        cluster.cpus_per_worker = default_cpus_per_worker(cluster.num_workers, use_gpu)
    log.info("training %s on %d rows, %d worker(s) × %d CPU%s", job.model.model, job.train_rows,
             cluster.num_workers, cluster.cpus_per_worker, " + 1 GPU" if use_gpu else "")
    objective = objective_class(job)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"objective": path_of(objective_class), "job": job.to_dict(), "progress": board},
        scaling_config=ScalingConfig(num_workers=cluster.num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cluster.cpus_per_worker}),
        run_config=RunConfig(
            name=cluster.run_name,
            storage_path=cluster.storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=cluster.keep_checkpoints,
                                               checkpoint_score_attribute=objective.metric,
                                               checkpoint_score_order=objective.order),
            failure_config=FailureConfig(max_failures=cluster.max_failures),
            worker_runtime_env={"env_vars": worker_env_vars(use_gpu)},
        ),
        datasets=datasets,
        dataset_config=ExactEvalDataConfig(exact=("eval",)),
    )


def fit(objective_class, job, datasets: dict, what: str = "training"):
    """Guard the run folder, run the trainer; a failure beyond `--max-failures` becomes `TrainingFailed`."""
    cluster = job.cluster
    guard_run(cluster.storage_path, cluster.run_name, resume=cluster.resume, identity={
        "output": cluster.output, "objective": objective_class.name, "num_workers": cluster.num_workers,
        "batch_size": job.training.batch_size})
    import ray

    from pipelines.core.data import steps_per_epoch
    from pipelines.core.progress import ProgressBoard, training_bar

    board = ray.remote(num_cpus=0)(ProgressBoard).remote()
    trainer = build_trainer(objective_class, job, datasets, board)
    training = job.training
    total = steps_per_epoch(job.train_rows, cluster.num_workers, training.batch_size,
                            training.max_steps_per_epoch) * training.epochs
    try:
        with training_bar(board, what, total):
            return trainer.fit()
    except Exception as error:
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        raise TrainingFailed(f"{what} failed ({type(error).__name__}: {reason}); the latest checkpoint is kept: "
                             f"rerun the same command with --resume to continue") from error


def export_best(result, objective_class, output: Path) -> tuple[dict, list[dict]]:
    """Copy the best retained checkpoint's model into the local folder `output` (see `storage.staged_output`);
    returns (its history entry, the history).

    The best is `Result.get_best_checkpoint` by the objective's metric; mid-epoch checkpoints carry the worst
    possible score, so they are never chosen while an epoch's checkpoint exists.
    """
    if result.checkpoint is None:
        raise RuntimeError("the run finished without a checkpoint")
    with result.checkpoint.as_directory() as directory:
        history = checkpoints.read_history(directory)
    best_checkpoint = result.get_best_checkpoint(objective_class.metric, objective_class.order)
    with best_checkpoint.as_directory() as directory:
        position = checkpoints.read_history(directory)[-1]["epoch"]
        checkpoints.export_model(directory, output)
    best = next(entry for entry in history if entry["epoch"] == position)
    return best, history
