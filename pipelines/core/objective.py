"""What one kind of training adds to the shared loop: its model, its batches, its evaluation.

The loop in `pipelines.core.worker` does everything else (DDP, optimizer, schedule, precision, checkpoints,
resume, reports) the same way for every objective, as transformers' `Trainer` takes a model and a loss
instead of copying its loop per task. An objective travels to the workers as its import path plus the job's
plain dict, and is rebuilt there.
"""

from __future__ import annotations

import importlib
from typing import Iterable

import numpy as np


class Objective:
    """Base of the objectives (`pipelines.train.objective.Classification`, `pipelines.pretrain.objective.MaskedLM`).

    Attributes:
        name: recorded with the run (a resume must continue the same objective).
        metric, order: the eval metric that ranks checkpoints, and whether `max` or `min` is best.
    """

    name = "objective"
    metric = "eval_loss"
    order = "min"

    def __init__(self, job) -> None:
        self.job = job

    @classmethod
    def job_from_dict(cls, values: dict):
        raise NotImplementedError

    def build_model(self, tokenizer):
        """The model every rank starts from (identical weights on every rank)."""
        raise NotImplementedError

    def train_batches(self, shard, tokenizer, seed: int) -> Iterable[dict[str, np.ndarray]]:
        """Numpy batches with the model's keyword arguments, `labels` included, from this rank's shard."""
        raise NotImplementedError

    def eval_batches(self, shard, tokenizer) -> Iterable[dict[str, np.ndarray]]:
        raise NotImplementedError

    def batch_weight(self, batch: dict[str, np.ndarray]) -> float:
        """What a batch's mean loss averages over (rows; masked tokens for MLM), for the epoch's mean."""
        return float(len(batch["labels"]))

    def evaluate(self, module, batches, worker) -> tuple[dict, dict]:
        """(scalar metrics over every rank's eval shard, details kept in the history only)."""
        raise NotImplementedError

    def checkpoint_extra(self) -> dict:
        """What `kobert.json` records beside a checkpoint's model."""
        return {}


def path_of(objective_class: type) -> str:
    return f"{objective_class.__module__}:{objective_class.__qualname__}"


def from_config(config: dict) -> Objective:
    """The objective a worker runs: `{"objective": "module:Class", "job": job dict}`."""
    module_name, class_name = config["objective"].split(":")
    objective_class = getattr(importlib.import_module(module_name), class_name)
    return objective_class(objective_class.job_from_dict(config["job"]))
