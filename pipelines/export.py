"""`kobert export`: a classifier folder as an ONNX or OpenVINO model folder for the CPU runtimes (and serving
teams).

    kobert export --model runs/nsmc-small --format onnx --output runs/nsmc-small-onnx
    kobert export --model s3://bucket/models/x --format onnx --quantize int8 --output s3://bucket/models/x-onnx-int8
    kobert export --model runs/nsmc-small --format openvino --quantize int8 --output runs/nsmc-small/openvino-int8

`--format onnx`: `model.onnx` (ONNX Runtime's BERT fusions applied; dynamic int8 with `--quantize int8`).
`--format openvino`: `model.xml`/`model.bin`, OpenVINO's IR (static int8 with `--quantize int8`, its activation
scales calibrated on `--calibration-rows` real reviews other than the check's). Either folder holds `config.json`
with the labels, the tokenizer's files, and `export.json`: exporter, versions, quantization, and the check. Before
anything is written, `--check-rows` real reviews are labeled by the export and by PyTorch fp32 on the same token
ids; an export that keeps fewer than 99.9% (fp32) or 99.5% (int8) of PyTorch's labels is refused, exit 1.
`kobert label --model FOLDER` labels with it (docs/onnx.md); a model folder's own `onnx-int8/` or
`openvino-int8/` is what `--runtime auto` may pick.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from pipelines.args import add_dataclass_arguments, dataclass_from_args

# Enough on the NSMC recipe's trained model: scales from 300 training reviews kept 99.89% of PyTorch fp32's labels
# on its 21,650 test reviews (bf16 around the int8 products; 99.94% in f32), EPYC Zen 4, 2026-12-07.
CALIBRATION_ROWS = 300

HELP = "export a classifier to ONNX or OpenVINO (optionally int8), checked against PyTorch on real reviews"
FORMATS = ("onnx", "openvino")


@dataclass
class ExportConfig:
    """What to export, how, and how it is checked."""

    model: str = field(metadata={"help": "classifier directory or URI (e.g. a `kobert train` output) or hub id"})
    output: str = field(metadata={"help": "folder or URI (s3://, gs://, ...) for the exported model folder"})
    format: str = field(default="onnx", metadata={
        "help": "export format (onnx: ONNX Runtime's BERT fusions applied; openvino: OpenVINO's IR)"})
    quantize: str | None = field(default=None, metadata={
        "help": "int8: on onnx, ONNX Runtime's dynamic int8 quantization of the fused graph (int8 weights, activations "
                "per run); on openvino, NNCF's static int8 quantization (activation scales fixed from calibration "
                "reviews): the fastest measured CPU path where the CPU has VNNI (docs/onnx.md)"})
    check_rows: int = field(default=2000, metadata={
        "help": "real reviews labeled by both the export and PyTorch fp32 before anything is written"})
    check_data: str | None = field(default=None, metadata={
        "help": "Parquet file, folder or URI of the check's texts (default: $KOBERT_SHARED/data/nsmc/reviews.parquet)"})
    calibration_rows: int = field(default=CALIBRATION_ROWS, metadata={
        "help": "real reviews, other than the check's, that set the int8 scales (--format openvino --quantize int8)"})
    calibration_data: str | None = field(default=None, metadata={
        "help": "Parquet file, folder or URI of the calibration texts, e.g. the training split (default: "
                "--check-data, its calibration rows then kept out of the check)"})
    text_column: str = field(default="text", metadata={"help": "column of --check-data holding the texts"})
    max_length: int = field(default=128, metadata={"help": "token ids per text in the check (special tokens included)"})
    threads: int = field(default=0, metadata={"help": "CPU threads of the check (0: every core)"})
    min_agreement: float | None = field(default=None, metadata={
        "help": "share of PyTorch fp32's labels the export must keep in its check, or nothing is written (default: "
                "0.999 for fp32, 0.995 for int8); `kobert label --runtime auto` takes an int8 export only where it "
                "kept 0.995, whatever was allowed here"})

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.quantize not in (None, "int8"):
            raise ValueError(f"--quantize must be int8 (or absent for fp32), got {self.quantize!r}")
        if self.calibration_rows < 1:
            raise ValueError(f"--calibration-rows must be at least 1, got {self.calibration_rows}")
        if self.calibration_data and (self.format, self.quantize) != ("openvino", "int8"):
            raise ValueError("--calibration-data sets the scales of a static int8 export: it needs --format openvino "
                             "--quantize int8")
        if self.check_rows < 1:
            raise ValueError(f"--check-rows must be at least 1, got {self.check_rows}")
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 1:
            raise ValueError(f"--min-agreement must be a share from 0 to 1, got {self.min_agreement}")
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
    from kobert_ops.export_kinds import RUNTIME_NAMES
    from kobert_ops.onnx_predictor import folder_runtime
    from pipelines.errors import UserError

    directory = hub.resolve(model, allow_patterns=hub.MODEL_FILES)
    kind = folder_runtime(directory)
    if kind != "torch":
        raise UserError(f"{model} is already an {RUNTIME_NAMES[kind]} export; pass the PyTorch classifier folder it "
                        "came from")
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
    from kobert_ops.export_kinds import EXPORT_GRAPHS
    from pipelines.core.storage import is_uri, staged_output
    from pipelines.errors import UserError

    if not is_uri(config.output):
        for graph in EXPORT_GRAPHS.values():
            if (Path(config.output) / graph).exists():
                raise UserError(f"{config.output} already holds an export ({graph}); remove it or pick another "
                                "--output")
    source_folder(config.model)  # refuses what cannot be exported before the texts are read
    data = config.check_data or str(paths.require(paths.nsmc_reviews(), "the check's reviews", paths.NSMC_HELP))
    options = dict(quantize=config.quantize, max_length=config.max_length, num_threads=config.threads or None,
                   min_agreement=config.min_agreement, texts_source=data)
    if config.format == "openvino":
        from kobert_ops.openvino_export import export_openvino as export_to

        calibrated = config.quantize == "int8"
        if calibrated and config.calibration_data:
            options["texts"] = check_texts(data, config.check_rows, config.text_column)
            options["calibration_texts"] = check_texts(config.calibration_data, config.calibration_rows,
                                                       config.text_column)
            options["calibration_source"] = config.calibration_data
        else:
            texts = check_texts(data, config.check_rows + (config.calibration_rows if calibrated else 0),
                                config.text_column)
            options["texts"], options["calibration_texts"] = split_calibration(
                texts, config.calibration_rows if calibrated else 0)
    else:
        from kobert_ops.onnx_export import export_onnx as export_to

        options["texts"] = check_texts(data, config.check_rows, config.text_column)
    if not is_uri(config.output):  # a local folder is created only once the check has passed
        report = export_to(config.model, config.output, **options)
    else:
        with staged_output(config.output) as staging:
            report = export_to(config.model, staging, **options)
    return report


def split_calibration(texts: list[str], rows: int) -> tuple[list[str], list[str]]:
    """(check texts, calibration texts): `rows` of `texts` spread evenly over them calibrate, the others check,
    so the check judges the int8 scales on reviews they were not fitted to."""
    if rows <= 0:
        return texts, []
    rows = min(rows, len(texts) // 2)  # a small input: half each
    if rows == 0:  # one text: nothing to calibrate on apart from the check (the export refuses, one line)
        return texts, []
    stride = len(texts) / rows
    picked = {int(i * stride) for i in range(rows)}
    return ([text for i, text in enumerate(texts) if i not in picked],
            [text for i, text in enumerate(texts) if i in picked])


def summary_line(report: dict, output: str) -> str:
    check = report["check"]
    verdict = (f"check: {check['label_agreement']:.2%} of PyTorch fp32's labels on {check['rows']:,} reviews, max "
               f"probability difference {check['max_probability_difference']:.4f}")
    if report["format"] == "openvino":
        quantization = report.get("quantization")
        if not quantization:
            return f"wrote fp32 OpenVINO model ({report['model_bytes'] / 1e6:.1f} MB) to {output}; {verdict}"
        held = check.get("on_avx2_kernels")  # kobert_ops.avx2_check: what an AVX2-only CPU would label
        on_avx2 = f"; on AVX2 int8 kernels (oneDNN held to AVX2): {held['label_agreement']:.2%}" if held else ""
        return (f"wrote int8 OpenVINO model ({report['model_bytes'] / 1e6:.1f} MB; NNCF static int8, scales from "
                f"{quantization['calibration_rows']:,} other reviews) to {output}; {verdict} (run in "
                f"{check.get('runs_in', 'f32')} around the int8 products){on_avx2}")
    fused = ", ".join(f"{name} {count}" for name, count in report["fusions"].items()) or "none"
    if report.get("layer_norms_as_plain_operators"):
        fused += f"; {report['layer_norms_as_plain_operators']} layer norms then split into plain operators"
    everywhere = ("; the same integer products on AVX2, VNNI and AMX int8 kernels (weights within 7 bits)"
                  if (report.get("quantization") or {}).get("saturation_free") else "")
    return (f"wrote {report['precision']} ONNX model ({report['model_bytes'] / 1e6:.1f} MB; fused: {fused}) to "
            f"{output}; {verdict}{everywhere}")
