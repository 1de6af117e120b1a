"""Export a classifier folder to an OpenVINO model folder, statically quantized to int8 on real reviews, checked
against PyTorch before anything is written.

    from kobert_ops.openvino_export import export_openvino
    report = export_openvino("models/base", "models/base-openvino-int8", texts=check_reviews,
                             calibration_texts=other_reviews, quantize="int8")

The folder holds `model.xml` and `model.bin` (OpenVINO's IR), `config.json` (the model's own, labels included,
plus the graph's digest), the tokenizer's files and `export.json` (exporter, versions, quantization, the check),
as the ONNX export's folder does (`kobert_ops.onnx_export`, whose check and floors this export shares).

Why static int8 here and dynamic int8 on ONNX Runtime: NNCF's post-training quantization fixes every activation's
scale from calibration reviews at export (with its transformer rules: SmoothQuant, fast bias correction, the
attention's softmax and the norms left in float), so no forward pass spends time quantizing activations, and
OpenVINO runs the products on oneDNN's int8 kernels. Measured on an EPYC Zen 4 (AVX-512 VNNI), `base` preset:
about 1.3× ONNX Runtime's dynamic int8 graph, with more of PyTorch fp32's labels kept on the NSMC recipe's model
(docs/onnx.md). The graph is the ONNX trace (`kobert_ops.onnx_trace`: eager attention, the last layer for
`[CLS]` only) read by OpenVINO's ONNX frontend, before ONNX Runtime's fusions (OpenVINO reads none of its
contrib operators and fuses the graph itself).

NNCF reports usage to Google Analytics unless told otherwise: `NNCF_CI` is set before it is imported, which is
NNCF's own switch for that (`nncf/telemetry/wrapper.py`); a user's export sends nothing anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from kobert_ops import hub
from kobert_ops.cpu_path import weights_sha256
from kobert_ops.onnx_export import MIN_AGREEMENT, publish_checked, quiet_logging, releases, versions
from kobert_ops.onnx_trace import OPSET, trace
from kobert_ops.openvino_predictor import GRAPH_FILE, WEIGHTS_FILE, OpenVinoPredictor
from kobert_ops.predictor import length_batches

EXPORTER = ("torch.onnx.export, TorchScript tracer (dynamo=False), eager attention; read by OpenVINO's ONNX "
            "frontend")
QUANTIZATIONS = (None, "int8")


def export_openvino(model: str | os.PathLike, output: str | os.PathLike, texts: Sequence[str],
                    calibration_texts: Sequence[str] = (), quantize: str | None = "int8", max_length: int = 128,
                    batch_size: int = 64, num_threads: int | None = None, min_agreement: float | None = None,
                    texts_source: str | None = None, calibration_source: str | None = None) -> dict:
    """Write the OpenVINO folder of classifier `model` into `output` (a local folder); returns `export.json`.

    Args:
        model: classifier folder, URI or hub id (safetensors `*ForSequenceClassification`).
        output: local folder; created, and only written once the check passed.
        texts: real texts (no null/empty ones) the check labels with both the export and PyTorch fp32.
        calibration_texts: real texts, other than `texts`, whose activations set the int8 scales (int8 only).
        quantize: `int8` (NNCF's static quantization) or None (the fp32 graph).
        max_length: ids per text in the calibration and the check.
        batch_size: rows per forward pass in the calibration and the check.
        num_threads: threads of both runtimes in the check (default: their own choice).
        min_agreement: share of equal labels required (default: `MIN_AGREEMENT` of the precision).
        texts_source: where the texts came from, recorded with the check.
        calibration_source: where the calibration texts came from (default: `texts_source`), recorded.

    Raises:
        AgreementError: fewer equal labels than `min_agreement`; nothing written.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize must be int8 or absent, got {quantize!r}")
    if not texts:
        raise ValueError("the export check needs at least one text")
    if quantize == "int8" and not calibration_texts:
        raise ValueError("a static int8 export needs calibration texts")
    from kobert_ops.model import load_classifier, labels_of
    from kobert_ops.tokenizer import load_tokenizer

    directory = hub.resolve(model, allow_patterns=hub.MODEL_FILES)
    precision = quantize or "fp32"
    torch_model = load_classifier(directory).eval()
    torch_model.set_attn_implementation("eager")  # kobert_ops.onnx_export: the graph the trace is known to give
    tokenizer = load_tokenizer(directory)
    with tempfile.TemporaryDirectory(prefix="kobert-openvino-") as work:
        staged = Path(work) / "folder"
        staged.mkdir()
        graph = trace(torch_model, Path(work) / "traced.onnx")
        quantization = write_graph(Path(work) / "traced.onnx", staged, quantize, tokenizer, calibration_texts,
                                   max_length, batch_size)
        if quantization:
            quantization["calibration_data"] = calibration_source or texts_source
        tokenizer.save_pretrained(staged)
        digest = graph_sha256(staged)
        config = torch_model.config.to_dict()
        # the graph's digest in config.json: a labeling run's model_version hashes config.json and the weights
        config["kobert_openvino"] = {"file": GRAPH_FILE, "sha256": digest, "precision": precision}
        (staged / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        report = {
            "format": "openvino", "exporter": EXPORTER, "opset": OPSET, "graph": graph,
            "versions": {**versions(), **openvino_versions()}, "precision": precision,
            "inputs": {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]},
            "outputs": {"logits": ["batch", len(labels_of(torch_model))]},
            "quantization": quantization, "model_sha256": digest,
            "model_bytes": sum((staged / name).stat().st_size for name in (GRAPH_FILE, WEIGHTS_FILE)),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source_model": str(model),
            "source_weights_sha256": weights_sha256(directory),  # what `--runtime auto` checks (kobert_ops.cpu_path)
        }
        required = MIN_AGREEMENT[precision] if min_agreement is None else min_agreement
        publish_checked(directory, staged, Path(output), report, texts, max_length, batch_size, num_threads,
                        required, texts_source, OpenVinoPredictor, on_avx2=precision == "int8")
    return report


def write_graph(traced: Path, staged: Path, quantize: str | None, tokenizer, calibration_texts: Sequence[str],
                max_length: int, batch_size: int) -> dict | None:
    """The traced ONNX graph as OpenVINO IR in `staged`, int8 when asked; returns the quantization record."""
    import openvino as ov

    model = ov.Core().read_model(str(traced))
    record = None
    if quantize == "int8":
        feeds = calibration_feeds(tokenizer, calibration_texts, max_length, batch_size)
        model = quantize_static(model, feeds)
        fake_quantize = sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
        record = {"method": "nncf.quantize (post-training static)", "model_type": "transformer",
                  "preset": "mixed (weights symmetric, activations asymmetric)", "weights": "int8, per channel",
                  "activations": "8-bit, scales fixed from the calibration texts",
                  "calibration_rows": len(calibration_texts), "fake_quantize_ops": fake_quantize}
    # fp32 constants as they are (OpenVINO's default halves them to fp16 on disk)
    ov.save_model(model, str(staged / GRAPH_FILE), compress_to_fp16=False)
    return record


def calibration_feeds(tokenizer, texts: Sequence[str], max_length: int, batch_size: int) -> list[dict]:
    """The calibration texts as the graph's inputs, in length-sorted batches as the predictor feeds them."""
    encoded = tokenizer.batch_encode(list(texts), max_length=max_length, padding="longest")
    valid = np.asarray(encoded["valid_length"], dtype=np.int64)
    feeds = []
    for rows, width in length_batches(valid, batch_size, True):
        feeds.append({"input_ids": np.ascontiguousarray(encoded["input_ids"][rows, :width]).astype(np.int64),
                      "attention_mask": (np.arange(width)[None, :] < valid[rows][:, None]).astype(np.int64)})
    return feeds


def quantize_static(model, feeds: list[dict]):
    """NNCF's post-training int8 quantization with its transformer rules, calibrated on every batch of `feeds`;
    its progress bars and tables are kept off the user's console (the export prints its own summary)."""
    nncf = import_nncf()
    nncf.set_log_level(logging.ERROR)
    with quiet_logging(logging.WARNING), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        return nncf.quantize(model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                             subset_size=len(feeds))  # NNCF counts dataset items: here batches


def import_nncf():
    """NNCF, imported with its usage reports to Google Analytics switched off (see the module docstring)."""
    os.environ.setdefault("NNCF_CI", "1")
    import nncf

    return nncf


def graph_sha256(folder: Path) -> str:
    """sha256 over the IR's graph, then its weights."""
    digest = hashlib.sha256()
    for name in (GRAPH_FILE, WEIGHTS_FILE):
        with open(folder / name, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def openvino_versions() -> dict[str, str]:
    """The OpenVINO and NNCF releases an OpenVINO export was made with (NNCF where installed)."""
    return releases(("openvino", "nncf"))
