"""Typed configuration of `kobert train`, one dataclass per concern; every field is also a CLI flag.

The four dataclasses travel to the Ray Train workers as one plain dict (`TrainJob.to_dict`), so a worker
rebuilds exactly the configuration the driver validated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

METRICS = {"eval_macro_f1": "max", "eval_accuracy": "max", "eval_loss": "min"}
# random-init presets need a much larger step than pretrained weights, which 1e-3 would wreck
SCRATCH_LEARNING_RATE = 1e-3
FINE_TUNE_LEARNING_RATE = 5e-5


@dataclass
class ModelConfig:
    """Model to fine-tune."""

    model: str = field(default="tiny", metadata={"help": "a preset (tiny, small, base: random init), a model directory or a hub id (e.g. skt/kobert-base-v1)"})
    tokenizer: str | None = field(default=None, metadata={"help": "KoBERT tokenizer directory or hub id (default: the model directory if it has one, else $KOBERT_SHARED/kobert)"})
    labels: list[str] | None = field(default=None, metadata={"help": "label names in id order, comma-separated (default: labels.json beside --train, else the model's, else the data's label_name column)"})
    freeze_encoder: bool = field(default=False, metadata={"help": "train only the classification head (feature extraction)"})


@dataclass
class DataConfig:
    """Training and evaluation data."""

    train: str = field(metadata={"help": "training Parquet file/directory (local path or URI Ray Data reads)"})
    eval: str = field(metadata={"help": "evaluation Parquet file/directory"})
    text_column: str = field(default="text", metadata={"help": "column with the review text"})
    label_column: str = field(default="label", metadata={"help": "column with integer label ids"})
    max_length: int = field(default=128, metadata={"help": "KoBERT ids per row, [CLS]/[SEP] included; longer texts are truncated"})
    bucket_batches: int = field(default=32, metadata={"help": "batches per length-bucketing pool (1 disables bucketing)"})

    def __post_init__(self) -> None:
        if self.max_length < 8 or self.max_length > 512:
            raise ValueError(f"--max-length must lie in [8, 512], got {self.max_length}")
        if self.bucket_batches < 1:
            raise ValueError("--bucket-batches must be at least 1")


@dataclass
class TrainingConfig:
    """Optimisation."""

    epochs: int = field(default=3, metadata={"help": "passes over the training data"})
    batch_size: int = field(default=32, metadata={"help": "rows per batch on each worker (global batch = this × workers)"})
    learning_rate: float | None = field(default=None, metadata={"help": "peak AdamW learning rate (default: 1e-3 for a preset trained from scratch, 5e-5 to fine-tune pretrained weights)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (never on biases and LayerNorm)"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of all steps spent warming up linearly"})
    schedule: str = field(default="linear", metadata={"help": "learning-rate decay after warmup", "choices": ["linear", "cosine", "constant"]})
    max_grad_norm: float = field(default=1.0, metadata={"help": "clip the global gradient norm to this (0 disables)"})
    precision: str = field(default="auto", metadata={"help": "auto: bf16 autocast where the hardware has bf16 units", "choices": ["auto", "bf16", "fp32"]})
    seed: int = field(default=42, metadata={"help": "seed of weights, dropout and data order"})
    metric: str = field(default="eval_macro_f1", metadata={"help": "eval metric that picks the best epoch", "choices": sorted(METRICS)})
    max_steps_per_epoch: int | None = field(default=None, metadata={"help": "stop each epoch after N steps (benchmarks, smoke runs)"})

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("--epochs and --batch-size must be at least 1")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"--learning-rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"--warmup-ratio must lie in [0, 1), got {self.warmup_ratio}")


@dataclass
class ClusterConfig:
    """Where and how the run executes, and where it writes."""

    output: str = field(metadata={"help": "output directory: the best model (loads with transformers), metrics.json, report.md, plots"})
    num_workers: int = field(default=2, metadata={"help": "Ray Train workers (DDP ranks)"})
    use_gpu: bool | None = field(default=None, metadata={"help": "one GPU per worker with NCCL (default: if the cluster has GPUs)"})
    cpus_per_worker: int | None = field(default=None, metadata={"help": "CPUs reserved per worker, also its torch threads (default: local cores / workers, at least 1)"})
    storage_path: str | None = field(default=None, metadata={"help": "Ray Train storage for checkpoints; shared storage (NFS, s3://) on multi-node clusters (default: OUTPUT/checkpoints)"})
    run_name: str = field(default="train", metadata={"help": "Ray Train run name under the storage path"})
    resume: bool = field(default=False, metadata={"help": "continue an interrupted run from its latest checkpoint (same --output/--storage-path)"})
    max_failures: int = field(default=2, metadata={"help": "worker failures to recover from automatically (from the last checkpoint)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "checkpoints kept: the best by --metric (the latest is always kept too)"})

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"--num-workers must be at least 1, got {self.num_workers}")
        if self.keep_checkpoints < 1:
            raise ValueError("--keep-checkpoints must be at least 1")


@dataclass
class TrainJob:
    """Everything a training worker needs; resolved on the driver (labels, row counts, fault injection)."""

    model: ModelConfig
    data: DataConfig
    training: TrainingConfig
    cluster: ClusterConfig
    labels: list[str] = field(default_factory=list)
    train_rows: int = 0
    tokenizer_dir: str = ""
    fault_after_epoch: int | None = None  # test-only: KOBERT_FAULT_AFTER_EPOCH, see docs/training.md

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainJob":
        return cls(
            model=ModelConfig(**values["model"]),
            data=DataConfig(**values["data"]),
            training=TrainingConfig(**values["training"]),
            cluster=ClusterConfig(**values["cluster"]),
            **{k: v for k, v in values.items() if k not in ("model", "data", "training", "cluster")},
        )
