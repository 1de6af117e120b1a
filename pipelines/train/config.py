"""Typed configuration of `kobert train`, one dataclass per concern; every field is also a CLI flag.

Model and data are fine-tuning's own; optimisation and cluster are the shared core's
(`pipelines.core.config`). The four travel to the Ray Train workers as one plain dict (`TrainJob.to_dict`),
so a worker rebuilds exactly the configuration the driver validated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.core.config import METRICS, ClusterConfig, JobDict, TrainingConfig

__all__ = ["METRICS", "ClusterConfig", "DataConfig", "ModelConfig", "TrainJob", "TrainingConfig"]


@dataclass
class ModelConfig:
    """Model to fine-tune."""

    model: str = field(default="tiny", metadata={"help": "a preset (tiny, small, base: random init, KoBERT vocabulary), a model directory or a hub id of a BERT, RoBERTa or ELECTRA encoder (e.g. skt/kobert-base-v1, klue/roberta-base)"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer directory or hub id (default: the model's own; for a preset, $KOBERT_SHARED/kobert)"})
    labels: list[str] | None = field(default=None, metadata={"help": "label names in id order, comma-separated (default: labels.json beside --train, else the model's, else the data's label_name column)"})
    freeze_encoder: bool = field(default=False, metadata={"help": "train only the pooler and the classification head (feature extraction); embeddings and encoder layers stay frozen"})


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
class TrainJob(JobDict):
    """Everything a training worker needs; resolved on the driver (labels, row counts, fault injection)."""

    model: ModelConfig
    data: DataConfig
    training: TrainingConfig
    cluster: ClusterConfig
    labels: list[str] = field(default_factory=list)
    train_rows: int = 0
    tokenizer_dir: str = ""
    fault_after_epoch: int | None = None  # test-only: KOBERT_FAULT_AFTER_EPOCH, see docs/training.md
