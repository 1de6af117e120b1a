"""Typed configuration shared by every Ray Train command: optimisation and where and how the run executes.

Every field is also a CLI flag (`pipelines.args`); `kobert train` and `kobert pretrain` add their own model
and data configs beside these two.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

METRICS = {"eval_macro_f1": "max", "eval_accuracy": "max", "eval_loss": "min"}
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SHUFFLES = ("global", "blocks", "none")


@dataclass
class TrainingConfig:
    """Optimisation."""

    epochs: int = field(default=3, metadata={"help": "passes over the training data"})
    batch_size: int = field(default=32, metadata={"help": "rows per batch on each worker (global batch = this × workers)"})
    learning_rate: float | None = field(default=None, metadata={"help": "peak AdamW learning rate (default: 1e-3 for a preset trained from scratch; for pretrained weights by encoder width: 5e-5 from 768 up, as BERT-base, 1e-4 from 512, 5e-4 below)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (never on biases and LayerNorm)"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of all steps spent warming up linearly"})
    schedule: str = field(default="linear", metadata={"help": "learning-rate decay after warmup", "choices": ["linear", "cosine", "constant"]})
    max_grad_norm: float = field(default=1.0, metadata={"help": "clip the global gradient norm to this (0 disables)"})
    precision: str = field(default="auto", metadata={"help": "auto: bf16 autocast where the hardware has bf16 units (CPU: AMX/AVX-512-bf16; GPU: compute capability 8+), fp16 with loss scaling on older GPUs, else fp32", "choices": list(PRECISIONS)})
    seed: int = field(default=42, metadata={"help": "seed of weights, dropout and masks"})
    shuffle: str = field(default="global", metadata={"help": "row order each epoch: global (a full random shuffle of the training set every epoch), blocks (random block order and a local buffer: cheaper, for data already shuffled), none", "choices": list(SHUFFLES)})
    metric: str = field(default="eval_macro_f1", metadata={"help": "eval metric that picks the best epoch", "choices": sorted(METRICS)})
    max_steps_per_epoch: int | None = field(default=None, metadata={"help": "stop each epoch after N steps (benchmarks, smoke runs)"})
    checkpoint_every_steps: int | None = field(default=None, metadata={"help": "also checkpoint every N optimizer steps within an epoch (default: by --checkpoint-every-minutes)"})
    checkpoint_every_minutes: float = field(default=15.0, metadata={"help": "checkpoint within an epoch when this much time has passed since the last checkpoint, so a fault repeats at most this much work (0 disables)"})

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("--epochs and --batch-size must be at least 1")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"--learning-rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"--warmup-ratio must lie in [0, 1), got {self.warmup_ratio}")
        if self.checkpoint_every_steps is not None and self.checkpoint_every_steps < 1:
            raise ValueError(f"--checkpoint-every-steps must be at least 1, got {self.checkpoint_every_steps}")
        if self.checkpoint_every_minutes < 0:
            raise ValueError("--checkpoint-every-minutes must not be negative")


@dataclass
class ClusterConfig:
    """Where and how the run executes, and where it writes."""

    output: str = field(metadata={"help": "output directory: the best model (loads with transformers), metrics.json, report.md, plots"})
    num_workers: int = field(default=2, metadata={"help": "Ray Train workers (DDP ranks)"})
    use_gpu: bool | None = field(default=None, metadata={"help": "one GPU per worker with NCCL (default: if the cluster has GPUs)"})
    cpus_per_worker: int | None = field(default=None, metadata={"help": "CPUs reserved per worker, also its torch threads (default: from the nodes of the Ray cluster: the largest node's CPUs less one for data reads, at most an equal share of the cluster's; 1 with a GPU)"})
    storage_path: str | None = field(default=None, metadata={"help": "Ray Train storage for checkpoints; shared storage (NFS, s3://) on multi-node clusters (default: OUTPUT/checkpoints)"})
    run_name: str | None = field(default=None, metadata={"help": "Ray Train run name under the storage path (default: derived from OUTPUT, so runs of different outputs never share checkpoints)"})
    resume: bool = field(default=False, metadata={"help": "continue an interrupted run from its latest checkpoint (same --output/--storage-path)"})
    max_failures: int = field(default=2, metadata={"help": "worker failures to recover from automatically (from the last checkpoint)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "checkpoints kept: the best by --metric (the latest is always kept too)"})

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"--num-workers must be at least 1, got {self.num_workers}")
        if self.keep_checkpoints < 1:
            raise ValueError("--keep-checkpoints must be at least 1")


class JobDict:
    """A job (one dataclass of configs plus driver-resolved values) as the plain dict the workers receive,
    and back: `to_dict` on the driver, `from_dict` on every rank rebuilds exactly what the driver validated."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_args(cls, args):
        """The job a command line asks for: each config dataclass built from its own parsed options."""
        from pipelines.args import dataclass_from_args

        hints = typing.get_type_hints(cls)
        return cls(**{item.name: dataclass_from_args(hints[item.name], args) for item in dataclasses.fields(cls)
                      if dataclasses.is_dataclass(hints[item.name])})

    @classmethod
    def from_dict(cls, values: dict):
        hints = typing.get_type_hints(cls)
        fields = {}
        for item in dataclasses.fields(cls):
            kind = hints[item.name]
            value = values[item.name]
            fields[item.name] = kind(**value) if dataclasses.is_dataclass(kind) else value
        return cls(**fields)
