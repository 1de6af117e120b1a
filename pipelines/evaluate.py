"""`kobert evaluate`: score a classifier on labelled Parquet; one JSON line on stdout, a report on disk.

    kobert evaluate --model runs/nsmc-tiny --data data/nsmc/test.parquet --output runs/nsmc-tiny/test-eval

Reads the data in record batches (any size fits), predicts with the path `kobert label` would take
(`kobert_ops.cpu_path.load_predictor`: PyTorch with length-sorted batches, bf16 where fast, or an ONNX
export) and accumulates one confusion matrix; `path` in the metrics says which ran and why. Labels may be ids or names; names are
mapped through the model's own `label2id`, so a checkpoint and its data cannot silently disagree.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

import numpy as np

from pipelines.args import add_dataclass_arguments, dataclass_from_args

HELP = "evaluate a classifier on labelled data: accuracy, macro-F1, confusion matrix, report"


@dataclass
class EvaluateConfig:
    """Model, data and where the report goes."""

    model: str = field(metadata={"help": "classifier directory or URI (e.g. a `kobert train` output) or hub id: KoBERT or "
                                         "any BERT/RoBERTa/ELECTRA classifier"})
    data: str = field(metadata={"help": "labelled Parquet file or directory (local path or fsspec URI)"})
    output: str | None = field(default=None, metadata={"help": "directory or URI (s3://, gs://, …) for report.md, metrics.json, confusion_matrix.png"})
    text_column: str = field(default="text", metadata={"help": "column with the text"})
    label_column: str = field(default="label", metadata={"help": "column with label ids or label names"})
    batch_size: int = field(default=0, metadata={
        "help": "rows per forward pass (0: the runtime's own, 128 on PyTorch and OpenVINO, 64 on ONNX Runtime)"})
    max_length: int = field(default=128, metadata={"help": "token ids per row; longer texts are truncated"})
    tokenizer: str | None = field(default=None, metadata={
        "help": "tokenizer directory or hub id (default: the model's own); its ids must fit the model's vocabulary"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    precision: str = field(default="auto", metadata={"help": "auto: bf16 where the hardware has bf16 units, else fp32; int8: dynamic int8 quantization (CPU)", "choices": ["auto", "bf16", "fp32", "int8"]})
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N rows"})
    runtime: str = field(default="auto", metadata={
        "help": "torch, onnx (a `kobert export --format onnx` folder on ONNX Runtime, CPU), openvino (a `kobert "
                "export --format openvino` folder on OpenVINO, CPU) or auto: the export a folder is, the model "
                "folder's own checked int8 exports (openvino-int8/, onnx-int8/; and torch on AMX CPUs): the fastest "
                "measured on this machine (once per machine and model; KOBERT_PATH_TRIAL=off: by the CPU's flags), "
                "else torch", "choices": ["auto", "torch", "onnx", "openvino"]})

    def __post_init__(self) -> None:
        if self.batch_size < 0:
            raise ValueError(f"--batch-size must be 0 (the runtime's own) or more, got {self.batch_size}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, EvaluateConfig, "evaluate")


def run(args: argparse.Namespace) -> int:
    metrics = evaluate(dataclass_from_args(EvaluateConfig, args))
    line = {key: metrics[key] for key in ("accuracy", "macro_f1", "n")}
    line.update(per_class=metrics["per_class"], labels=metrics["labels"], path=metrics["path"])
    print(json.dumps(line, ensure_ascii=False))
    return 0


def record_batches(uri: str, columns: list[str], batch_size: int, limit: int | None):
    """Column-pruned record batches of a Parquet file/directory, stopping after `limit` rows."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(uri, format="parquet")
    missing = [column for column in columns if column not in dataset.schema.names]
    if missing:
        raise ValueError(f"{uri} has no column(s) {missing}; it has {dataset.schema.names}")
    seen = 0
    for batch in dataset.to_batches(columns=columns, batch_size=batch_size):
        if limit is not None:
            batch = batch.slice(0, max(0, limit - seen))
        if batch.num_rows:
            yield batch
        seen += batch.num_rows
        if limit is not None and seen >= limit:
            return


def label_ids(values: np.ndarray, label2id: dict[str, int], num_labels: int) -> np.ndarray:
    """Label ids from a column of ids or names; fails naming labels the model does not know."""
    if values.dtype.kind in "iu":
        ids = values.astype(np.int64)
        bad = ids[(ids < 0) | (ids >= num_labels)]
        if bad.size:
            raise ValueError(f"label ids {sorted(set(bad.tolist()))[:5]} are outside the model's 0..{num_labels - 1}")
        return ids
    unknown = sorted({str(v) for v in values} - set(label2id))
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not among the model's {sorted(label2id)}")
    return np.array([label2id[str(v)] for v in values], dtype=np.int64)


def evaluate(config: EvaluateConfig) -> dict:
    """Metrics of the model on the data (and the report, when `output` is set)."""
    from kobert_ops.cpu_path import load_predictor
    from kobert_ops.metrics import metrics_from_confusion, confusion_matrix
    from kobert_ops.report import write_evaluation_report
    from pipelines.core.storage import require_data

    require_data("--data", config.data)
    predictor, path = load_predictor(config.model, config.runtime, config.device, config.precision,
                                     config.batch_size, config.max_length, tokenizer=config.tokenizer)
    label2id = {name: idx for idx, name in enumerate(predictor.labels)}
    num_labels = len(predictor.labels)
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    skipped = 0
    for batch in record_batches(config.data, [config.text_column, config.label_column], 4096, config.limit):
        texts = batch.column(config.text_column).to_pylist()
        labels = batch.column(config.label_column).to_numpy(zero_copy_only=False)
        keep = np.array([isinstance(t, str) and t.strip() != "" for t in texts], dtype=bool)
        skipped += int((~keep).sum())
        if not keep.any():
            continue
        predictions = predictor.predict([t for t, k in zip(texts, keep) if k])
        matrix += confusion_matrix(label_ids(labels[keep], label2id, num_labels), predictions.label, num_labels)
    metrics = metrics_from_confusion(matrix, predictor.labels)
    metrics.update(model=config.model, data=config.data, skipped_empty_text=skipped, path=path)
    if config.output:
        from pipelines.core.storage import staged_output

        with staged_output(config.output) as directory:  # a URI gets the report once it is complete
            write_evaluation_report(directory, metrics, title=f"Evaluation of {config.model} on {config.data}")
    return metrics
