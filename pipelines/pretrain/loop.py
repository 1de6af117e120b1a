"""The per-worker MLM loop: the classification loop's machinery (`run_epoch`, rank-safe stepping,
fingerprints, checkpoints) with `BertForMaskedLM` and an eval of masked-token loss and accuracy."""

from __future__ import annotations

import logging
import tempfile
import time

import numpy as np

from pipelines.pretrain.config import PretrainJob
from pipelines.pretrain.data import masked_batches
from pipelines.train import checkpoint as checkpoints
from pipelines.train.loop import (all_reduce_sum, gather_fingerprints, loss_curve, maybe_inject_fault,
                                  prepare_training, run_epoch, setup_worker, to_device)
from pipelines.train.progress import EpochProgress, expected_steps

log = logging.getLogger(__name__)
METRIC = "eval_mlm_loss"


def build_mlm_model(job: PretrainJob):
    """A preset with fresh weights (same seed on every rank), or an existing encoder with an MLM head; the
    training loss scores masked positions only (`MaskedPositionsLM`), the eval below uses the stock head."""
    import torch

    from kobert_ops import hub
    from kobert_ops.masked_lm import MaskedPositionsLM
    from kobert_ops.model import PRESETS, bert_config

    if job.model.model in PRESETS:
        torch.manual_seed(job.training.seed)
        return MaskedPositionsLM(bert_config(job.model.model))
    return MaskedPositionsLM.from_pretrained(hub.resolve(job.model.model))


def evaluate_mlm(model, batches, autocast, device, world_size: int) -> dict:
    """Global masked-token cross-entropy and accuracy over every rank's eval shard."""
    import torch

    model.eval()
    totals = np.zeros(3, dtype=np.float64)  # loss sum, correct, masked tokens
    with torch.inference_mode(), autocast:
        for batch in batches:
            tensors = to_device(batch, device)
            logits = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits
            chosen = tensors["labels"] != -100
            logits, labels = logits[chosen].float(), tensors["labels"][chosen]
            totals += [float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum")),
                       float((logits.argmax(-1) == labels).sum()), float(chosen.sum())]
    loss_sum, correct, count = all_reduce_sum(totals, world_size)
    return {"eval_mlm_loss": float(loss_sum / max(count, 1)), "eval_mlm_accuracy": float(correct / max(count, 1)),
            "eval_masked_tokens": int(count)}


def pretrain_loop_per_worker(config: dict) -> None:
    """Ray Train entry point; `config` is `PretrainJob.to_dict()`."""
    import ray.train

    job = PretrainJob.from_dict(config)
    worker = setup_worker(job)
    rank, world_size, device, autocast = worker.rank, worker.world_size, worker.device, worker.autocast
    model, module, optimizer, scheduler, start_epoch, global_step, history = prepare_training(build_mlm_model(job),
                                                                                             job, worker)
    training, data, tokenizer, precision = job.training, job.data, worker.tokenizer, worker.precision

    def batches(name: str, seed: int | None):
        return masked_batches(ray.train.get_dataset_shard(name), tokenizer, data.text_column, training.batch_size,
                              data.max_length, data.bucket_batches, data.mask_probability, seed)

    for epoch in range(start_epoch + 1, training.epochs + 1):
        started = time.perf_counter()
        progress = EpochProgress(epoch, expected_steps(job.train_rows, world_size, training.batch_size,
                                                       training.max_steps_per_epoch), world_size, rank == 0)
        trained = run_epoch(model, batches("train", training.seed * 1000 + epoch * 10 + rank), optimizer, scheduler,
                            training.max_grad_norm, autocast, device, world_size, training.max_steps_per_epoch,
                            progress)
        train_seconds = time.perf_counter() - started
        curve = loss_curve(trained["step_losses"], global_step)
        global_step += trained["steps"]
        entry = {
            "epoch": epoch,
            "global_step": global_step,
            "train_loss": trained["train_loss"],
            "train_samples": trained["train_samples"],
            "train_samples_per_s": trained["train_samples"] / max(train_seconds, 1e-9),
            **evaluate_mlm(module, batches("eval", None), autocast, device, world_size),
            "learning_rate": float(scheduler.get_last_lr()[0]),
            "epoch_seconds": time.perf_counter() - started,
            "world_size": world_size,
            "precision": precision,
            "resumed_from_epoch": start_epoch,
            "fingerprints": gather_fingerprints(module, world_size),
        }
        history.append({**entry, "train_loss_curve": curve})
        if rank == 0:
            log.info("epoch %d: %s", epoch, {k: v for k, v in entry.items() if k != "fingerprints"})
            with tempfile.TemporaryDirectory() as directory:
                checkpoints.save(directory, module, tokenizer, optimizer, scheduler, epoch, global_step, history,
                                 extra={"model": job.model.model, "objective": "mlm"})
                ray.train.report(entry, checkpoint=ray.train.Checkpoint.from_directory(directory))
        else:
            ray.train.report(entry, checkpoint=None)
        maybe_inject_fault(job, epoch, start_epoch, rank, world_size)
