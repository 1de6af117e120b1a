"""`kobert export`: a classifier folder as an ONNX model folder for ONNX Runtime (and serving teams).

    kobert export --model runs/nsmc-small --format onnx --output runs/nsmc-small-onnx
    kobert export --model s3://bucket/models/x --format onnx --quantize int8 --output s3://bucket/models/x-onnx-int8

The folder holds `model.onnx` (ONNX Runtime's BERT fusions applied; int8 weights with `--quantize int8`),
`config.json` with the labels, the tokenizer's files, and `export.json`: exporter, versions, opset, fused
operators, quantization, and the check. Before anything is written, `--check-rows` real reviews are labeled
by the export and by PyTorch fp32 on the same token ids; an export that keeps fewer than 99.9% (fp32) or
99.5% (int8) of PyTorch's labels is refused, exit 1. `kobert label --runtime onnx --model FOLDER` labels
with it (docs/onnx.md).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from pipelines.args import add_dataclass_arguments, dataclass_from_args

HELP = "export a classifier to ONNX (fused, optionally int8), checked against PyTorch on real reviews"
FORMATS = ("onnx",)


@dataclass
class ExportConfig:
    """What to export, how, and how it is checked."""

    model: str = field(metadata={"help": "classifier directory or URI (e.g. a `kobert train` output) or hub id"})
    output: str = field(metadata={"help": "folder or URI (s3://, gs://, ...) for the exported model folder"})
    format: str = field(default="onnx", metadata={"help": "export format (onnx: ONNX Runtime's BERT fusions applied)"})
    quantize: str | None = field(default=None, metadata={
        "help": "int8: ONNX Runtime dynamic int8 quantization of the fused graph (int8 weights, activations per run)"})
    check_rows: int = field(default=2000, metadata={
        "help": "real reviews labeled by both the export and PyTorch fp32 before anything is written"})
    check_data: str | None = field(default=None, metadata={
        "help": "Parquet file, folder or URI of the check's texts (default: $KOBERT_SHARED/data/nsmc/reviews.parquet)"})
    text_column: str = field(default="text", metadata={"help": "column of --check-data holding the texts"})
    max_length: int = field(default=128, metadata={"help": "token ids per text in the check (special tokens included)"})
    threads: int = field(default=0, metadata={"help": "CPU threads of the check (0: every core)"})

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.quantize not in (None, "int8"):
            raise ValueError(f"--quantize must be int8 (or absent for fp32), got {self.quantize!r}")
        if self.check_rows < 1:
            raise ValueError(f"--check-rows must be at least 1, got {self.check_rows}")
        if not 2 < self.max_length <= 512:
            raise ValueError(f"--max-length must be in 3..512, got {self.max_length}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, ExportConfig, "export")


def run(args: argparse.Namespace) -> int:
    from kobert_ops.onnx_export import AgreementError

    config = dataclass_from_args(ExportConfig, args)
    try:
        report = export(config)
    except AgreementError as error:
        print(f"kobert export: refused: {error}", file=sys.stderr)
        return 1
    print(summary_line(report, config.output))
    return 0


def source_folder(model: str):
    """The local folder of the classifier to export; one-line errors for what cannot be exported."""
    from kobert_ops import hub
    from kobert_ops.onnx_predictor import is_onnx_folder
    from pipelines.errors import UserError

    directory = hub.resolve(model, allow_patterns=hub.MODEL_FILES)
    if is_onnx_folder(directory):
        raise UserError(f"{model} is already an ONNX export; pass the PyTorch classifier folder it came from")
    if not any(directory.glob("*.safetensors")) and not any(directory.glob("*.bin")):
        raise UserError(f"{model} holds no weights (model.safetensors); pass a classifier folder, e.g. a "
                        "`kobert train` or `kobert init-model` output")
    if not (directory / "config.json").is_file():
        raise UserError(f"{model} holds no config.json; pass a classifier folder")
    return directory


def check_texts(path: str, rows: int, text_column: str) -> list[str]:
    """`rows` non-empty texts spread evenly over the whole Parquet input (not just its first rows)."""
    import numpy as np
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet")
    if text_column not in dataset.schema.names:
        raise ValueError(f"{path} has no column {text_column!r}; it has {dataset.schema.names}")
    table = dataset.to_table(columns=[text_column])
    texts = [text for text in table[text_column].to_pylist() if isinstance(text, str) and text.strip()]
    if not texts:
        raise ValueError(f"{path} holds no non-empty text in column {text_column!r}")
    picks = np.linspace(0, len(texts) - 1, num=min(rows, len(texts))).round().astype(int)
    return [texts[i] for i in picks]


def export(config: ExportConfig) -> dict:
    """Check the inputs, export, and write the folder (a URI gets it once complete); returns `export.json`."""
    from pathlib import Path

    from kobert_ops import paths
    from kobert_ops.onnx_export import export_onnx
    from kobert_ops.onnx_predictor import MODEL_FILE
    from pipelines.core.storage import is_uri, staged_output
    from pipelines.errors import UserError

    if not is_uri(config.output) and (Path(config.output) / MODEL_FILE).exists():
        raise UserError(f"{config.output} already holds an export ({MODEL_FILE}); remove it or pick another --output")
    source_folder(config.model)  # refuses what cannot be exported before the texts are read
    data = config.check_data or str(paths.require(paths.nsmc_reviews(), "the check's reviews", paths.NSMC_HELP))
    texts = check_texts(data, config.check_rows, config.text_column)
    options = dict(texts=texts, quantize=config.quantize, max_length=config.max_length,
                   num_threads=config.threads or None, texts_source=data)
    if not is_uri(config.output):  # a local folder is created only once the check has passed
        report = export_onnx(config.model, config.output, **options)
    else:
        with staged_output(config.output) as staging:
            report = export_onnx(config.model, staging, **options)
    return report


def summary_line(report: dict, output: str) -> str:
    check = report["check"]
    fused = ", ".join(f"{name} {count}" for name, count in report["fusions"].items()) or "none"
    if report.get("layer_norms_as_plain_operators"):
        fused += f"; {report['layer_norms_as_plain_operators']} layer norms then split into plain operators"
    return (f"wrote {report['precision']} ONNX model ({report['model_bytes'] / 1e6:.1f} MB; fused: {fused}) to "
            f"{output}; check: {check['label_agreement']:.2%} of PyTorch fp32's labels on {check['rows']:,} "
            f"reviews, max probability difference {check['max_probability_difference']:.4f}")
