"""The per-worker training loop that Ray Train runs on every DDP rank.

    build model → (resume: load checkpoint) → DDP → for each epoch: train → evaluate → fingerprint → report

Every collective happens the same number of times on every rank: a step runs only when all ranks still
have a batch (one tiny all-reduce per step, so shards of slightly different batch counts cannot deadlock
DDP), evaluation sums one confusion matrix across ranks, and `ray.train.report` is called by every rank
each epoch. Only rank 0 writes a checkpoint. Pretraining reuses `run_epoch`/`all_ranks_have`/`fingerprint`
with a different model and loss.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from pipelines.train import checkpoint as checkpoints
from pipelines.train.config import TrainJob
from pipelines.train.data import worker_batches
from pipelines.train.progress import EpochProgress, expected_steps

log = logging.getLogger(__name__)


def all_ranks_have(has_batch: bool, world_size: int) -> bool:
    """True while every rank still has a batch (MIN all-reduce of a flag)."""
    if world_size == 1:
        return has_batch
    import torch
    import torch.distributed as dist

    flag = torch.tensor([1 if has_batch else 0], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def all_reduce_sum(values: np.ndarray, world_size: int) -> np.ndarray:
    """Element-wise sum of a numpy array across ranks (float64 or int64 kept)."""
    if world_size == 1:
        return values
    import torch
    import torch.distributed as dist

    tensor = torch.from_numpy(np.ascontiguousarray(values))
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def fingerprint(model) -> str:
    """sha256 of all parameter bytes in name order: equal on two ranks iff their weights are bit-identical."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def gather_fingerprints(model, world_size: int) -> list[str]:
    """Every rank's fingerprint, in rank order (the all-reduce proof recorded in `metrics.json`)."""
    own = fingerprint(model)
    if world_size == 1:
        return [own]
    import torch.distributed as dist

    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, own)
    return gathered


def build_model(job: TrainJob):
    """A preset with fresh weights (seeded identically on every rank), or a pretrained checkpoint."""
    from kobert_ops.model import PRESETS, build_classifier, load_classifier

    if job.model.model in PRESETS:
        model = build_classifier(job.model.model, job.labels, seed=job.training.seed)
    else:
        model = load_classifier(job.model.model, labels=job.labels)
    if job.model.freeze_encoder:
        for parameter in model.base_model.parameters():
            parameter.requires_grad = False
    return model


def to_device(batch: dict[str, np.ndarray], device) -> dict:
    import torch

    return {key: torch.from_numpy(value).to(device, non_blocking=True) for key, value in batch.items()}


def run_epoch(model, batches, optimizer, scheduler, max_grad_norm: float, autocast, device, world_size: int,
              max_steps: int | None = None, progress=None) -> dict:
    """One pass of optimizer steps; returns the global mean loss, row and step counts, and this rank's
    per-step losses (for the loss curve). `progress` (an `EpochProgress`) hears of every step."""
    import torch

    model.train()
    loss_sum, rows, steps, step_losses = 0.0, 0, 0, []
    iterator = iter(batches)
    while True:
        batch = next(iterator, None) if max_steps is None or steps < max_steps else None
        if not all_ranks_have(batch is not None, world_size):
            break
        tensors = to_device(batch, device)
        with autocast:
            loss = model(**tensors).loss  # mean cross-entropy of this rank's batch
        loss.backward()  # DDP all-reduces (averages) gradients across ranks here
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        count = len(batch["labels"])
        step_losses.append(float(loss.detach()))
        loss_sum += step_losses[-1] * count
        rows += count
        steps += 1
        if progress is not None:
            progress.step(steps, rows, step_losses[-1])
    total_loss, total_rows = all_reduce_sum(np.array([loss_sum, rows], dtype=np.float64), world_size)
    return {"train_loss": float(total_loss / max(total_rows, 1)), "train_samples": int(total_rows), "steps": steps,
            "step_losses": step_losses}


def loss_curve(step_losses: list[float], first_step: int, points: int = 50) -> list[list[float]]:
    """At most `points` `[global step, mean loss]` pairs: per-step losses averaged in consecutive chunks."""
    if not step_losses:
        return []
    chunk = -(-len(step_losses) // points)
    return [[first_step + start + len(step_losses[start : start + chunk]), float(np.mean(step_losses[start : start + chunk]))]
            for start in range(0, len(step_losses), chunk)]


def evaluate(model, batches, num_labels: int, autocast, device, world_size: int) -> tuple[np.ndarray, float]:
    """Global confusion matrix and mean loss over every rank's eval shard (no DDP: plain module)."""
    import torch

    from kobert_ops.metrics import confusion_matrix

    model.eval()
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    loss_sum = np.zeros(1, dtype=np.float64)
    with torch.inference_mode(), autocast:
        for batch in batches:
            tensors = to_device(batch, device)
            logits = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits.float()
            loss_sum += float(torch.nn.functional.cross_entropy(logits, tensors["labels"], reduction="sum"))
            matrix += confusion_matrix(batch["labels"], logits.argmax(-1).cpu().numpy(), num_labels)
    matrix = all_reduce_sum(matrix, world_size)
    loss_sum = all_reduce_sum(loss_sum, world_size)
    return matrix, float(loss_sum[0] / max(matrix.sum(), 1))


def maybe_inject_fault(job: TrainJob, epoch: int, start_epoch: int, rank: int, world_size: int) -> None:
    """Test hook (`KOBERT_FAULT_AFTER_EPOCH=N`): the last rank dies once, right after epoch N's checkpoint.

    "Once" because a worker restarted from that checkpoint starts after epoch N and never gets here.
    """
    if job.fault_after_epoch != epoch or start_epoch >= epoch or rank != world_size - 1:
        return
    import ray.train

    # wait until the controller has committed the checkpoint, so the restart really finds it
    ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED,
                                           timeout_s=120)
    log.warning("KOBERT_FAULT_AFTER_EPOCH=%d: rank %d exits on purpose", epoch, rank)
    os._exit(17)


def report_epoch(entry: dict, history: list[dict], rank: int, module, tokenizer, optimizer, scheduler,
                 job: TrainJob) -> None:
    """`ray.train.report` on every rank (it is a barrier); only rank 0 writes and attaches a checkpoint."""
    import ray.train

    if rank != 0:
        ray.train.report(entry, checkpoint=None)
        return
    log.info("epoch %d: %s", entry["epoch"], {k: v for k, v in entry.items() if "fingerprint" not in k})
    with tempfile.TemporaryDirectory() as directory:
        checkpoints.save(directory, module, tokenizer, optimizer, scheduler, entry["epoch"], entry["global_step"],
                         history, extra={"model": job.model.model, "labels": job.labels})
        ray.train.report(entry, checkpoint=ray.train.Checkpoint.from_directory(directory))


@dataclass
class Worker:
    """What every training rank sets up the same way: identity, device, precision, tokenizer."""

    rank: int
    world_size: int
    device: object
    precision: str
    autocast: object
    tokenizer: object


def precision_context(precision: str, device_type: str):
    """The context a training step runs in: bf16 autocast for `bf16`, nothing for `fp32`.

    `precision` is already resolved (`resolve_precision`): `auto` gives fp32 on CPUs without bf16 units, where
    bf16 would be emulated and hundreds of times slower.
    """
    import torch

    return torch.autocast(device_type=device_type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def setup_worker(job) -> Worker:
    """Rank, device (CUDA under NCCL, else CPU with `cpus_per_worker` threads), bf16 autocast, tokenizer."""
    import ray.train
    import ray.train.torch
    import torch

    from kobert_ops.predictor import resolve_precision
    from kobert_ops.tokenizer import KoBERTTokenizer

    context = ray.train.get_context()
    if job.cluster.cpus_per_worker:
        torch.set_num_threads(job.cluster.cpus_per_worker)
    device = ray.train.torch.get_device()
    precision = resolve_precision(job.training.precision, str(device))
    autocast = precision_context(precision, device.type)
    return Worker(context.get_world_rank(), context.get_world_size(), device, precision, autocast,
                  KoBERTTokenizer.from_pretrained(job.tokenizer_dir))


def prepare_training(model, job, worker: Worker):
    """Resume weights, wrap in DDP, build AdamW + schedule, resume their state.

    Returns (model, unwrapped module, optimizer, scheduler, finished epoch, global step, history).
    """
    import ray.train
    import ray.train.torch
    import torch

    from kobert_ops.optim import build_optimizer, build_scheduler

    resume_from = ray.train.get_checkpoint()
    if resume_from is not None:
        with resume_from.as_directory() as directory:
            checkpoints.load_weights(directory, model)
    torch.manual_seed(job.training.seed + worker.rank)  # dropout differs per rank; weights are DDP-synchronised
    model = ray.train.torch.prepare_model(model)  # device + DistributedDataParallel (gloo on CPU, NCCL on GPU)
    module = model.module if hasattr(model, "module") else model
    training = job.training
    steps_per_epoch = -(-job.train_rows // (training.batch_size * worker.world_size))
    if training.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, training.max_steps_per_epoch)
    optimizer = build_optimizer(model, training.learning_rate, training.weight_decay)
    scheduler = build_scheduler(optimizer, steps_per_epoch * training.epochs, training.warmup_ratio, training.schedule)
    start_epoch, global_step, history = 0, 0, []
    if resume_from is not None:
        with resume_from.as_directory() as directory:
            start_epoch, global_step, history = checkpoints.load_state(directory, optimizer, scheduler)
        log.info("rank %d resumes after epoch %d (step %d)", worker.rank, start_epoch, global_step)
    return model, module, optimizer, scheduler, start_epoch, global_step, history


def train_loop_per_worker(config: dict) -> None:
    """Ray Train entry point; `config` is `TrainJob.to_dict()`."""
    import ray.train

    from kobert_ops.metrics import metrics_from_confusion

    job = TrainJob.from_dict(config)
    worker = setup_worker(job)
    rank, world_size, device, precision, autocast, tokenizer = (worker.rank, worker.world_size, worker.device,
                                                                worker.precision, worker.autocast, worker.tokenizer)
    model, module, optimizer, scheduler, start_epoch, global_step, history = prepare_training(build_model(job), job,
                                                                                             worker)
    training = job.training
    initial_fingerprint = fingerprint(module)

    def batches(name: str, seed: int | None, batch_size: int):
        return worker_batches(ray.train.get_dataset_shard(name), tokenizer, job.data.text_column,
                              job.data.label_column, batch_size, job.data.max_length, job.data.bucket_batches, seed)

    for epoch in range(start_epoch + 1, training.epochs + 1):
        started = time.perf_counter()
        seed = training.seed * 1000 + epoch * 10 + rank  # a different row order per epoch and rank
        progress = EpochProgress(epoch, expected_steps(job.train_rows, world_size, training.batch_size,
                                                       training.max_steps_per_epoch), world_size, rank == 0)
        trained = run_epoch(model, batches("train", seed, training.batch_size), optimizer, scheduler,
                            training.max_grad_norm, autocast, device, world_size, training.max_steps_per_epoch,
                            progress)
        train_seconds = time.perf_counter() - started
        curve = loss_curve(trained["step_losses"], global_step)
        global_step += trained["steps"]
        matrix, eval_loss = evaluate(module, batches("eval", None, training.batch_size * 2), len(job.labels),
                                     autocast, device, world_size)
        evaluation = metrics_from_confusion(matrix, job.labels)
        entry = {
            "epoch": epoch,
            "global_step": global_step,
            "train_loss": trained["train_loss"],
            "train_samples": trained["train_samples"],
            "train_samples_per_s": trained["train_samples"] / max(train_seconds, 1e-9),
            "eval_loss": eval_loss,
            "eval_accuracy": evaluation["accuracy"],
            "eval_macro_f1": evaluation["macro_f1"],
            "eval_n": evaluation["n"],
            "learning_rate": float(scheduler.get_last_lr()[0]),
            "epoch_seconds": time.perf_counter() - started,
            "world_size": world_size,
            "precision": precision,
            "resumed_from_epoch": start_epoch,
            "initial_fingerprint": initial_fingerprint,
            "fingerprints": gather_fingerprints(module, world_size),
        }
        history.append({**entry, "eval": evaluation, "train_loss_curve": curve})
        report_epoch(entry, history, rank, module, tokenizer, optimizer, scheduler, job)
        maybe_inject_fault(job, epoch, start_epoch, rank, world_size)
