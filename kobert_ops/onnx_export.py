"""Export a classifier folder to an ONNX model folder that ONNX Runtime runs with its BERT fusions, checked
against PyTorch before anything is written.

    from kobert_ops.onnx_export import export_onnx
    report = export_onnx("models/base", "models/base-onnx", texts=reviews, quantize="int8")

The folder holds `model.onnx`, `config.json` (the model's own, labels included, plus the graph's digest),
the tokenizer's files and `export.json` (exporter, versions, opset, fusions, quantization, the check).

Why this exporter: with torch 2.13 and transformers 5, only the TorchScript tracer (`dynamo=False`) over
eager attention yields a graph whose attention ONNX Runtime's BERT optimizer recognises (`Attention`,
`SkipLayerNormalization`, `BiasGelu`, `EmbedLayerNormalization` fused). Traced through SDPA, or through the
torch.export-based exporter in either attention, the same optimizer fuses layer norms and GELU but finds no
attention at all. torch marks the tracer deprecated; torch is pinned, and `export.json` names the exporter.
A BERT classifier's last layer is traced for `[CLS]` only (`kobert_ops.onnx_trace`; `export.json` "graph").

The check labels real reviews with the export and with PyTorch fp32 on the same token ids: the share of equal
labels and the largest probability difference go into `export.json`; below `MIN_AGREEMENT` of its precision
the export is refused (`AgreementError`) and nothing is written; so is an fp32 export whose probabilities
differ from PyTorch's by more than `MAX_FP32_PROBABILITY_DIFFERENCE`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from kobert_ops import avx2_check, hub
from kobert_ops.cpu_facts import cpu_model, int8_kernels
from kobert_ops.cpu_path import weights_sha256
from kobert_ops.onnx_layer_norm import split_layer_norms
from kobert_ops.onnx_predictor import EXPORT_FILE, MODEL_FILE, OnnxPredictor
from kobert_ops.onnx_trace import OPSET, trace

log = logging.getLogger(__name__)

EXPORTER = "torch.onnx.export, TorchScript tracer (dynamo=False), eager attention"
QUANTIZATIONS = (None, "int8")
MIN_AGREEMENT = {"fp32": 0.999, "int8": 0.995}  # share of PyTorch fp32's labels the export must keep
# An fp32 graph computes what PyTorch does up to float rounding (~1e-7 measured): a larger difference is a
# wrong graph (a mask ignored, say) even where the labels happen to agree. int8 differs by design.
MAX_FP32_PROBABILITY_DIFFERENCE = 1e-3
FUSED_OPS = ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu", "Gelu", "FastGelu",
             "LayerNormalization")


class AgreementError(RuntimeError):
    """The exported graph labels too few rows as PyTorch fp32 does; nothing was written."""


def export_onnx(model: str | os.PathLike, output: str | os.PathLike, texts: Sequence[str],
                quantize: str | None = None, max_length: int = 128, batch_size: int = 64,
                num_threads: int | None = None, min_agreement: float | None = None,
                texts_source: str | None = None) -> dict:
    """Write the ONNX folder of classifier `model` into `output` (a local folder); returns `export.json`.

    Args:
        model: classifier folder, URI or hub id (safetensors `*ForSequenceClassification`, as `kobert train`
            and `kobert init-model` write).
        output: local folder; created, and only written once the check passed.
        texts: real texts (no null/empty ones) the check labels with both the export and PyTorch fp32.
        quantize: None (fp32) or `int8` (ONNX Runtime dynamic quantization of the fused graph).
        max_length: ids per text in the check.
        batch_size: rows per forward pass in the check.
        num_threads: threads of both runtimes in the check (default: their own choice).
        min_agreement: share of equal labels required (default: `MIN_AGREEMENT` of the precision).
        texts_source: where `texts` came from, recorded with the check.

    Raises:
        AgreementError: fewer equal labels than `min_agreement`.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize must be int8 or absent, got {quantize!r}")
    if not texts:
        raise ValueError("the export check needs at least one text")
    from kobert_ops.model import load_classifier

    directory = hub.resolve(model, allow_patterns=hub.MODEL_FILES)
    precision = quantize or "fp32"
    torch_model = load_classifier(directory).eval()
    torch_model.set_attn_implementation("eager")  # see the module docstring: SDPA's graph does not fuse
    with tempfile.TemporaryDirectory(prefix="kobert-onnx-") as work:
        staged = Path(work) / "folder"
        report = build_folder(torch_model, directory, Path(work), staged, quantize)
        report["source_model"] = str(model)
        # what `--runtime auto` checks before it labels a folder's own onnx-int8/ export (kobert_ops.cpu_path)
        report["source_weights_sha256"] = weights_sha256(directory)
        required = MIN_AGREEMENT[precision] if min_agreement is None else min_agreement
        publish_checked(directory, staged, Path(output), report, texts, max_length, batch_size, num_threads,
                        required, texts_source, OnnxPredictor)
    return report


def publish_checked(directory: Path, staged: Path, output: Path, report: dict, texts: Sequence[str],
                    max_length: int, batch_size: int, num_threads: int | None, required: float,
                    texts_source: str | None, open_export, on_avx2: bool = False) -> None:
    """Check the staged export folder against PyTorch (`check`, into `report`), then move it into `output`:
    nothing reaches `output` unless the check passed (`AgreementError` otherwise)."""
    write_report(staged, report)  # before the check too: the export's predictor reads the precision from it
    report["check"] = check(directory, staged, texts, max_length, batch_size, num_threads, required, open_export,
                            on_avx2)
    report["check"]["data"] = texts_source
    write_report(staged, report)
    output.mkdir(parents=True, exist_ok=True)
    for path in staged.iterdir():
        shutil.move(path, output / path.name)


def build_folder(torch_model, directory: Path, work: Path, staged: Path, quantize: str | None) -> dict:
    """Trace, fuse and (optionally) quantize into `staged/model.onnx`, beside the tokenizer and config;
    returns the export's record (without the check)."""
    from kobert_ops.model import labels_of
    from kobert_ops.tokenizer import load_tokenizer

    precision = quantize or "fp32"
    staged.mkdir()
    graph = trace(torch_model, work / "traced.onnx")
    fusions, split = fuse(work / "traced.onnx", work / "fused.onnx", torch_model.config)
    if quantize == "int8":
        quantize_int8(work / "fused.onnx", staged / MODEL_FILE)
    else:
        shutil.move(work / "fused.onnx", staged / MODEL_FILE)
    load_tokenizer(directory).save_pretrained(staged)
    digest = file_sha256(staged / MODEL_FILE)
    config = torch_model.config.to_dict()
    # The graph's digest in config.json: what identifies a model folder (a labeling run's model_version hashes
    # config.json and the weights it finds) changes with the graph.
    config["kobert_onnx"] = {"file": MODEL_FILE, "sha256": digest, "precision": precision}
    (staged / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return {
        "format": "onnx", "exporter": EXPORTER, "opset": OPSET, "graph": graph, "versions": versions(),
        "precision": precision,
        "inputs": {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]},
        "outputs": {"logits": ["batch", len(labels_of(torch_model))]},
        "fusions": fusions, "layer_norms_as_plain_operators": split, "quantization": quantization_record(quantize, staged / MODEL_FILE),
        "model_sha256": digest, "model_bytes": (staged / MODEL_FILE).stat().st_size,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_report(folder: Path, report: dict) -> None:
    (folder / EXPORT_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def fuse(traced: Path, fused: Path, config) -> tuple[dict[str, int], int]:
    """ONNX Runtime's BERT graph fusions (offline, so every session loads the fused graph), then its layer norms
    split back into plain operators (`kobert_ops.onnx_layer_norm`: ONNX Runtime's fused norm kernels are the
    slower ones) before the graph is written once; the fused operator counts (zeros left out) and how many
    norms were split."""
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_logging(logging.INFO):  # a line per fusion pass; the counts are what matters, and are returned
        optimized = optimize_model(str(traced), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size)
        counts = optimized.get_fused_operator_statistics()
        split = split_layer_norms(optimized.model)
        optimized.save_model_to_file(str(fused))
    if not counts.get("Attention"):
        log.warning("ONNX Runtime fused no Attention in %s: the export runs, but slower", traced)
    return {name: int(counts[name]) for name in FUSED_OPS if counts.get(name)}, split


# How `quantize_int8` quantizes the weights, as the record says it (`quantization_record`): see its docstring
INT8_WEIGHTS = {"per_channel": True, "reduce_range": True}


def quantize_int8(fused: Path, output: Path) -> None:
    """Dynamic int8 quantization: int8 weights, activations quantized per run (uint8), on the fused graph
    (ONNX Runtime quantizes its fused `Attention` too, as `QAttention`).

    The weights are quantized per output channel within 7 bits (`reduce_range`): CPUs without VNNI (AVX2-only
    ones such as the EPYC Zen 3, AVX-512 without VNNI) add each pair of u8×s8 products in 16 bits, which
    saturate, where VNNI and AMX add in 32 bits. With 8-bit weights the benchmark's base model's graph saturated
    8,051 pair sums on 500 reviews, touching nearly every review, so a check made on one kind of CPU did not hold
    on the other. Within 7 bits no pair can leave 16 bits (255 × 64 × 2 = 32,640), the integer products are the
    same on every kind of int8 kernel, and so is the check (`saturation_free` in the record). The lost bit is won
    back by the per-channel scales: 99.55% of PyTorch fp32's labels on that model's 2,000 check reviews against
    99.35% per tensor in 8 bits (Zen 4, 2026-12-07); ~2% slower there (`kobert label`, 3,000 reviews)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnx's shape inference knows no types past ONNX Runtime's fused (contrib) operators; every activation
    # tensor of this graph is float32, so that is the type to assume.
    # (its "consider pre-processing" warning is about that shape inference, which the type above replaces)
    with quiet_logging(logging.WARNING):
        quantize_dynamic(str(fused), str(output), weight_type=QuantType.QInt8, **INT8_WEIGHTS,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def quantization_record(quantize: str | None, graph: Path) -> dict | None:
    """How the graph was quantized, with the count of each int8 operator it holds."""
    if quantize is None:
        return None
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(graph)).graph.node:
        if node.op_type in ("QAttention", "QEmbedLayerNormalization", "MatMulInteger", "DynamicQuantizeMatMul"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return {"method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8",
            "activations": "uint8, per run", **INT8_WEIGHTS, "saturation_free": INT8_WEIGHTS["reduce_range"],
            "int8_ops": counts}


def check(model_dir: Path, onnx_dir: Path, texts: Sequence[str], max_length: int, batch_size: int,
          num_threads: int | None, min_agreement: float, open_export=OnnxPredictor, on_avx2: bool = False) -> dict:
    """Label `texts` with the export (opened by `open_export`: the predictor of its runtime) and with PyTorch fp32
    (the stock forward) on the same token ids. `on_avx2`: an int8 export's rows are labeled again on AVX2 int8
    kernels where this CPU's are others (`kobert_ops.avx2_check`; OpenVINO's exports), recorded, not required.

    Raises:
        AgreementError: equal labels on fewer than `min_agreement` of the rows.
    """
    from kobert_ops.predictor import Predictor

    reference = Predictor(model_dir, device="cpu", precision="fp32", batch_size=batch_size, max_length=max_length,
                          num_threads=num_threads, fused=False)
    exported = open_export(onnx_dir, batch_size=batch_size, max_length=max_length, num_threads=num_threads)
    encoded = reference.tokenizer.batch_encode(list(texts), max_length=max_length, padding="longest")
    expected = reference.predict_encoded(encoded["input_ids"], encoded["valid_length"])
    got = exported.predict_encoded(encoded["input_ids"], encoded["valid_length"])
    result = {**compare(got.probabilities, expected), "reference": "PyTorch fp32, stock forward",
              "max_length": max_length, "min_agreement": min_agreement}
    agreement = result["label_agreement"]
    if getattr(exported, "runs_in", None):  # OpenVINO: the float precision around the graph's int8 products
        result["runs_in"] = exported.runs_in
    if exported.precision == "int8":  # the agreement holds for these kernels (kobert_ops.cpu_facts.int8_kernels)
        result["cpu"] = {"model": cpu_model(), "int8_kernels": int8_kernels()}
        if on_avx2 and avx2_check.applies():
            held = avx2_check.labels_on_avx2(onnx_dir, encoded["input_ids"], encoded["valid_length"], batch_size,
                                             num_threads)
            if held is not None:
                probabilities, how = held
                result["on_avx2_kernels"] = {**compare(probabilities, expected), **how}
    if exported.precision == "fp32" and result["max_probability_difference"] > MAX_FP32_PROBABILITY_DIFFERENCE:
        raise AgreementError(
            f"the fp32 export's probabilities differ from PyTorch fp32's by up to "
            f"{result['max_probability_difference']:.4f} on {len(texts):,} reviews (float rounding stays below "
            f"{MAX_FP32_PROBABILITY_DIFFERENCE}): the graph computes something else; nothing written")
    if agreement < min_agreement:
        raise AgreementError(
            f"the {exported.precision} export keeps {agreement:.2%} of PyTorch fp32's labels on {len(texts):,} "
            f"reviews, below the {min_agreement:.2%} required (max probability difference "
            f"{result['max_probability_difference']:.3f}); nothing written")
    return result


def compare(probabilities: np.ndarray, expected) -> dict:
    """How far an export's `probabilities` are from PyTorch fp32's `expected` (`Predictions`): shared labels and
    probability differences."""
    labels = probabilities.argmax(axis=1)
    difference = np.abs(probabilities - expected.probabilities)
    return {"rows": len(labels), "label_agreement": float((labels == expected.label).mean()),
            "disagreeing_rows": int((labels != expected.label).sum()),
            "max_probability_difference": float(difference.max()),
            "mean_probability_difference": float(difference.mean())}


@contextmanager
def quiet_logging(level: int):
    """Drop log records up to `level` meanwhile (ONNX Runtime's tools log through top-level module loggers)."""
    previous = logging.root.manager.disable
    logging.disable(level)
    try:
        yield
    finally:
        logging.disable(previous)


def versions() -> dict[str, str]:
    """The releases an ONNX export was made with (its `export.json`)."""
    return releases(("torch", "transformers", "onnx", "onnxruntime"))


def releases(names) -> dict[str, str]:
    """{distribution: installed release} of those of `names` that are installed (package metadata: nothing is
    imported), for the records of exports and benchmark figures alike."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()
