"""The loop Ray Train runs on every DDP rank, for any objective.

    setup (rank, device, precision, tokenizer) → model → resume → DDP → for each epoch:
        steps (mid-epoch checkpoints every N steps or minutes) → evaluate → fingerprint → report

Every rank takes exactly `steps_per_epoch` steps (the equal split gives every rank the same row count), so
DDP's collectives line up without a per-step "do all ranks still have a batch" sync, and the schedule ends
at 0 on the last step. Evaluation sums its counts across ranks once. `ray.train.report` is called by every
rank the same number of times; rank 0 alone writes checkpoints, uploaded in the background.

A resume continues at the recorded step of the recorded epoch: the epoch's remaining steps run over a fresh
pass of the data (Ray Data's streaming split cannot replay a position), so the step count, the schedule and
the epoch's running loss are exact; which rows the rest of that epoch sees is a new random draw. Dropout is
re-seeded from (seed, rank, step) on resume.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from pipelines.core import checkpoint as checkpoints
from pipelines.core.checkpoint import Position
from pipelines.core.collectives import all_gather, all_reduce_sum, any_rank, fingerprint, gather_fingerprints
from pipelines.core.data import derive_seed, prefetch, steps_per_epoch
from pipelines.core.objective import Objective, from_config
from pipelines.core.precision import autocast_context, grad_scaler, resolve_training_precision
from pipelines.core.progress import EpochProgress, epoch_line

log = logging.getLogger(__name__)
CLOCK_CHECK_EVERY = 20  # steps between the (one-integer) collectives that agree on a time-based checkpoint


@dataclass
class Worker:
    """What every rank sets up the same way: identity, device, precision, tokenizer."""

    rank: int
    world_size: int
    device: object
    precision: str
    tokenizer: object
    node_id: str = ""
    threads: int = 0

    @property
    def autocast(self):
        return autocast_context(self.precision, self.device.type)


def setup_worker(job) -> Worker:
    """Rank, node, device (CUDA under NCCL, else CPU with as many torch threads as CPUs this worker holds on
    its node: Ray sets OMP_NUM_THREADS=1 in workers), precision, tokenizer."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from kobert_ops.tokenizer import load_tokenizer

    context = ray.train.get_context()
    runtime = ray.get_runtime_context()
    threads = max(1, int(runtime.get_assigned_resources().get("CPU", 1)))
    torch.set_num_threads(threads)
    device = ray.train.torch.get_device()
    precision = resolve_training_precision(job.training.precision, device.type)
    return Worker(context.get_world_rank(), context.get_world_size(), device, precision,
                  load_tokenizer(job.tokenizer_dir), runtime.get_node_id(), torch.get_num_threads())


def to_device(batch: dict[str, np.ndarray], device) -> dict:
    import torch

    return {key: torch.from_numpy(value).to(device, non_blocking=True) for key, value in batch.items()}


def optimizer_step(model, tensors: dict, optimizer, scheduler, scaler, max_grad_norm: float, autocast):
    """Forward, backward (DDP all-reduces gradients here), clip, step, schedule; fp16 through `scaler`.
    Returns the detached loss, still on the device."""
    import torch

    with autocast:
        loss = model(**tensors).loss
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    else:
        loss.backward()
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def loss_curve(step_losses: list[float], first_step: int, points: int = 50) -> list[list[float]]:
    """At most `points` `[global step, mean loss]` pairs: per-step losses averaged in consecutive chunks."""
    if not step_losses:
        return []
    chunk = -(-len(step_losses) // points)
    return [[first_step + start + len(step_losses[start : start + chunk]),
             float(np.mean(step_losses[start : start + chunk]))] for start in range(0, len(step_losses), chunk)]


def worst_score(order: str) -> float:
    """The score of a mid-epoch checkpoint: it has no eval metric, and must be the first one retention drops
    (Ray Train always keeps the latest checkpoint anyway)."""
    return -1e30 if order == "max" else 1e30


class WorkerRun:
    """One rank's whole run: model, optimizer, schedule, position; `run()` trains every remaining epoch."""

    def __init__(self, objective: Objective, worker: Worker, board=None) -> None:
        import ray.train
        import ray.train.torch
        import torch

        from kobert_ops.optim import build_optimizer, build_scheduler

        self.objective, self.worker, self.job = objective, worker, objective.job
        self.board = board if worker.rank == 0 else None  # the driver's progress bar (core.progress.ProgressBoard)
        training = self.job.training
        model = objective.build_model(worker.tokenizer)
        resume_from = ray.train.get_checkpoint()
        if resume_from is not None:
            with resume_from.as_directory() as directory:
                checkpoints.load_weights(directory, model)
        torch.manual_seed(derive_seed(training.seed, worker.rank))  # dropout differs per rank; weights are synced
        self.model = ray.train.torch.prepare_model(model)  # device + DistributedDataParallel (gloo/NCCL)
        self.module = self.model.module if hasattr(self.model, "module") else self.model
        self.steps_per_epoch = steps_per_epoch(self.job.train_rows, worker.world_size, training.batch_size,
                                               training.max_steps_per_epoch)
        self.optimizer = build_optimizer(self.model, training.learning_rate, training.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, self.steps_per_epoch * training.epochs,
                                         training.warmup_ratio, training.schedule)
        self.scaler = grad_scaler(worker.precision, worker.device.type)
        self.shape = {"world_size": worker.world_size, "batch_size": training.batch_size,
                      "steps_per_epoch": self.steps_per_epoch}
        self.position, self.history = Position(), []
        if resume_from is not None:
            with resume_from.as_directory() as directory:
                self.position, self.history, shape = checkpoints.load_state(directory, self.optimizer,
                                                                           self.scheduler, self.scaler)
            if shape and shape != self.shape:
                raise RuntimeError(f"the checkpoint was taken with {shape}, this run has {self.shape}: resume with "
                                   f"the same --num-workers, --batch-size and data")
            torch.manual_seed(derive_seed(training.seed, worker.rank, self.position.global_step))
            log.info("rank %d resumes at epoch %d, step %d of %d (global step %d)", worker.rank,
                     self.position.next_epoch(), self.position.steps_to_skip(self.position.next_epoch()),
                     self.steps_per_epoch, self.position.global_step)
        self.started_at = copy.deepcopy(self.position)
        self.initial_fingerprint = fingerprint(self.module)
        self.nodes = all_gather(worker.node_id, worker.world_size)
        self.threads = all_gather(worker.threads, worker.world_size)
        self.last_checkpoint = time.monotonic()
        self.pending: list = []  # (loss tensor, weight) of steps not yet added to the position's sums

    # ------------------------------------------------------------------ epochs
    def run(self) -> None:
        for epoch in range(self.position.next_epoch(), self.job.training.epochs + 1):
            started = time.perf_counter()
            rows = self.train_epoch(epoch)
            self.finish_epoch(epoch, rows, time.perf_counter() - started)

    def train_epoch(self, epoch: int) -> int:
        """The epoch's remaining steps; returns the rows this rank trained on in this process."""
        import ray.train

        worker, training = self.worker, self.job.training
        skip = self.position.steps_to_skip(epoch)
        if skip == 0:
            self.position = Position(epoch=epoch, steps_done=0, finished=False, global_step=self.position.global_step)
        shard = ray.train.get_dataset_shard("train")
        batches = iter(prefetch(self.objective.train_batches(shard, worker.tokenizer,
                                                             derive_seed(training.seed, epoch, worker.rank, skip))))
        progress = EpochProgress(epoch, self.steps_per_epoch, worker.world_size, worker.rank == 0, board=self.board,
                                 first_global_step=self.position.global_step)
        self.model.train()
        rows = 0
        try:
            for step in range(skip, self.steps_per_epoch):
                batch = next(batches, None)
                if batch is None:
                    raise RuntimeError(f"rank {worker.rank} ran out of training batches at step {step} of "
                                       f"{self.steps_per_epoch} in epoch {epoch}: the data changed during the run?")
                loss = self.step(batch)
                rows += len(batch["labels"])
                self.position.steps_done, self.position.rows = step + 1, self.position.rows + len(batch["labels"])
                self.position.global_step += 1
                progress.step(step + 1 - skip, rows, loss)
                if self.checkpoint_due(step + 1):
                    self.report(mid_epoch=True)
        finally:
            batches.close()
        return rows

    def step(self, batch: dict[str, np.ndarray]):
        """One optimizer step; returns the loss as a device tensor (read back only in bulk, later)."""
        loss = optimizer_step(self.model, to_device(batch, self.worker.device), self.optimizer, self.scheduler,
                              self.scaler, self.job.training.max_grad_norm, self.worker.autocast)
        self.pending.append((loss, self.objective.batch_weight(batch)))
        return loss

    def flush_losses(self) -> None:
        """Move the pending per-step losses into the position's running sums (one device read)."""
        if not self.pending:
            return
        import torch

        losses = torch.stack([loss.float() for loss, _ in self.pending]).cpu().numpy().tolist()
        weights = [weight for _, weight in self.pending]
        self.position.loss_sum += float(sum(loss * weight for loss, weight in zip(losses, weights)))
        self.position.loss_weight += float(sum(weights))
        self.position.step_losses.extend(losses)
        self.pending.clear()

    def checkpoint_due(self, steps_done: int) -> bool:
        """A mid-epoch checkpoint now? Never at an epoch's last step (the epoch's own checkpoint follows)."""
        training = self.job.training
        if steps_done >= self.steps_per_epoch:
            return False
        if training.checkpoint_every_steps:
            return steps_done % training.checkpoint_every_steps == 0
        if not training.checkpoint_every_minutes or steps_done % CLOCK_CHECK_EVERY:
            return False
        # rank 0's clock decides; one tiny all-reduce every CLOCK_CHECK_EVERY steps keeps the ranks agreeing
        elapsed = time.monotonic() - self.last_checkpoint
        return any_rank(self.worker.rank == 0 and elapsed >= training.checkpoint_every_minutes * 60,
                        self.worker.world_size)

    def finish_epoch(self, epoch: int, rows: int, train_seconds: float) -> None:
        import ray.train

        worker = self.worker
        self.flush_losses()
        started_eval = time.perf_counter()
        loss_sum, loss_weight, total_rows, session_rows = all_reduce_sum(
            np.array([self.position.loss_sum, self.position.loss_weight, self.position.rows, rows],
                     dtype=np.float64), worker.world_size)
        metrics, details = self.objective.evaluate(
            self.module, prefetch(self.objective.eval_batches(ray.train.get_dataset_shard("eval"), worker.tokenizer)),
            worker)
        first_step = self.position.global_step - len(self.position.step_losses)
        self.position.finished = True
        entry = {
            "epoch": epoch,
            "global_step": self.position.global_step,
            "train_loss": float(loss_sum / max(loss_weight, 1e-12)),
            "train_samples": int(total_rows),
            "train_samples_per_s": float(session_rows / max(train_seconds, 1e-9)),
            **metrics,
            "learning_rate": float(self.scheduler.get_last_lr()[0]),
            "epoch_seconds": train_seconds + time.perf_counter() - started_eval,
            "world_size": worker.world_size,
            "precision": worker.precision,
            "resumed_from_epoch": self.started_at.completed_epochs(),
            "resumed_from_step": self.started_at.global_step,
            "initial_fingerprint": self.initial_fingerprint,
            "fingerprints": gather_fingerprints(self.module, worker.world_size),
            "nodes": self.nodes,  # the Ray node of each rank, in rank order
            "threads": self.threads,
        }
        self.history.append({**entry, **details, "train_loss_curve": loss_curve(self.position.step_losses, first_step)})
        if worker.rank == 0:
            log.info("epoch %d: %s", epoch, {k: v for k, v in entry.items() if "fingerprint" not in k})
            if self.board is not None:
                self.board.epoch.remote(epoch_line(entry, self.job.training.epochs))
        self.report(mid_epoch=False, metrics=entry)
        self.maybe_inject_fault(epoch)

    # ------------------------------------------------------------------ checkpoints
    def report(self, mid_epoch: bool, metrics: dict | None = None) -> None:
        """`ray.train.report` on every rank (a barrier); rank 0 attaches a checkpoint, uploaded in the
        background so the next steps do not wait for storage."""
        import ray.train

        self.flush_losses()
        position = self.position
        if mid_epoch:
            metrics = {"epoch": position.epoch, "global_step": position.global_step, "steps_done": position.steps_done,
                       "mid_epoch": True, self.objective.metric: worst_score(self.objective.order)}
        else:
            metrics = {**metrics, "mid_epoch": False}
        self.last_checkpoint = time.monotonic()
        name = f"checkpoint_epoch{position.epoch:03d}_step{position.global_step:08d}"
        if self.worker.rank != 0:
            ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
            return
        directory = tempfile.mkdtemp(prefix="kobert-checkpoint-")  # Ray deletes it once uploaded
        checkpoints.save(directory, self.module, self.worker.tokenizer, self.optimizer, self.scheduler, self.scaler,
                         position, self.history, extra=self.objective.checkpoint_extra(), shape=self.shape)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory), checkpoint_dir_name=name,
                         checkpoint_upload_mode=ray.train.CheckpointUploadMode.ASYNC)

    def maybe_inject_fault(self, epoch: int) -> None:
        """Test hook (`KOBERT_FAULT_AFTER_EPOCH=N`): the last rank dies once, right after epoch N's checkpoint.

        "Once" because a worker restarted from that checkpoint starts after epoch N and never gets here.
        """
        worker = self.worker
        if (self.job.fault_after_epoch != epoch or self.started_at.completed_epochs() >= epoch
                or worker.rank != worker.world_size - 1):
            return
        import ray.train

        # wait until the controller has committed the checkpoint, so the restart really finds it
        ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED,
                                               timeout_s=120)
        log.warning("KOBERT_FAULT_AFTER_EPOCH=%d: rank %d exits on purpose", epoch, worker.rank)
        os._exit(17)


def train_loop_per_worker(config: dict) -> None:
    """Ray Train entry point; `config` is `{"objective": "module:Class", "job": job dict}`."""
    objective = from_config(config)
    WorkerRun(objective, setup_worker(objective.job), config.get("progress")).run()
