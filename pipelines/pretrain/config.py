"""Typed configuration of `kobert pretrain`; optimisation and cluster knobs are those of `kobert train`."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.core.config import ClusterConfig, JobDict, TrainingConfig

SCRATCH_LEARNING_RATE = 5e-4  # MLM from random weights; 1e-3 diverges more often on small batches


@dataclass
class PretrainModelConfig:
    """Model to pretrain."""

    model: str = field(default="small", metadata={"help": "a preset (tiny, small, base: random init, KoBERT vocabulary), or a model directory / hub id (BERT, RoBERTa, ELECTRA) to continue pretraining"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer directory or hub id (default: the model's own; for a preset, $KOBERT_SHARED/kobert)"})


@dataclass
class PretrainDataConfig:
    """Unlabeled text."""

    data: str = field(metadata={"help": "Parquet file/directory/URI with a text column (labels, if any, are ignored)"})
    text_column: str = field(default="text", metadata={"help": "column with the text"})
    exclude: str | None = field(default=None, metadata={"help": "Parquet with texts never to pretrain on (e.g. a test split), same text column"})
    eval_per_mille: int = field(default=10, metadata={"help": "texts held out for the MLM eval loss, per thousand (chosen by a hash of the text, so duplicates stay together)"})
    limit: int | None = field(default=None, metadata={"help": "use only the first N rows (quick runs)"})
    max_length: int = field(default=64, metadata={"help": "KoBERT ids per row, [CLS]/[SEP] included"})
    bucket_batches: int = field(default=32, metadata={"help": "batches per length-bucketing pool"})
    mask_probability: float = field(default=0.15, metadata={"help": "share of real tokens chosen for prediction (80% [MASK], 10% random, 10% kept)"})

    def __post_init__(self) -> None:
        if not 0 < self.eval_per_mille < 1000:
            raise ValueError(f"--eval-per-mille must lie in (0, 1000), got {self.eval_per_mille}")
        if not 0 < self.mask_probability < 1:
            raise ValueError(f"--mask-probability must lie in (0, 1), got {self.mask_probability}")
        if self.max_length < 8 or self.max_length > 512:
            raise ValueError(f"--max-length must lie in [8, 512], got {self.max_length}")


@dataclass
class PretrainJob(JobDict):
    """Everything a pretraining worker needs, resolved on the driver."""

    model: PretrainModelConfig
    data: PretrainDataConfig
    training: TrainingConfig
    cluster: ClusterConfig
    train_rows: int = 0
    tokenizer_dir: str = ""
    fault_after_epoch: int | None = None
