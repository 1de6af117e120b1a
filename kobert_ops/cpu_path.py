"""Which CPU path `--runtime auto` labels with on this machine: the model's own int8 ONNX export, or PyTorch.

A PyTorch model folder may hold its int8 export in `onnx-int8/` (`kobert export --model M --format onnx
--quantize int8 --output M/onnx-int8`). `auto` labels with it where all of these hold, and says why:

- the run is on a CPU and `--precision` is `auto` (a forced precision is PyTorch's);
- the CPU has no AMX. Measured (bench/results/onnx_throughput.md): fused int8 on ONNX Runtime was the fastest
  path on an AVX-512 bf16 + VNNI EPYC (2.49× torch fp32, 1.49× torch bf16) and on an AVX2-only EPYC; on AMX
  Xeons torch bf16 is the measured fast path and ONNX Runtime's int8 there has not been measured;
- the export was made from these very weights (`export.json` records their sha256: a folder retrained after
  its export must not label with the old graph);
- its check kept at least 99.5% of PyTorch fp32's labels on real reviews (`export.json`), so a model whose
  int8 graph disagrees more is never labeled in int8 unless the user asks for it with `--runtime onnx`.

Everything else stays on PyTorch (`kobert_ops.predictor` picks bf16 or fp32 per CPU).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

INT8_EXPORT = "onnx-int8"  # a model folder's own int8 export, which `--runtime auto` may choose
MIN_INT8_AGREEMENT = 0.995  # as kobert_ops.onnx_export.MIN_AGREEMENT["int8"], without importing onnx
# Rows per forward pass where the caller leaves it to the runtime. PyTorch's 128 was tuned on the fp32/bf16
# paths; ONNX Runtime int8 labeled 3,000 reviews of the base preset at 198 reviews/s in passes of 64 against 189
# in passes of 128 (EPYC Zen 4, 2 threads, 2026-12-06): fewer rows per pass pad less, and its int8 GEMMs stay
# efficient at ~1,100 token rows.
FORWARD_BATCH = {"torch": 128, "onnx": 64}


def weights_sha256(directory: str | Path) -> str:
    """sha256 over a model folder's weight files (`*.safetensors`, then `*.bin`, sorted by name)."""
    digest = hashlib.sha256()
    directory = Path(directory)
    for weights in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin")):
        with open(weights, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def has_amx() -> bool:
    """AMX tiles on this CPU, from the kernel's CPU flags (Linux), else from torch: importing torch costs a
    second or more of start-up that the ONNX path does not otherwise need."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    import torch

    return bool(torch.cpu._is_amx_tile_supported())


def gpu_device_files() -> bool:
    """Whether this machine shows a GPU's device files (NVIDIA's, or ROCm's `/dev/kfd`). Without them torch
    sees no GPU either, so `--device auto` is the CPU, known without importing torch."""
    return any(Path(node).exists() for node in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd"))


def run_device(device: str) -> str:
    """`--device` resolved; `auto` on a machine without GPU device files is the CPU, known without importing
    torch (`kobert_ops.predictor.resolve_device` asks torch otherwise)."""
    if device == "cpu" or device == "auto" and not gpu_device_files():
        return "cpu"
    from kobert_ops.predictor import resolve_device

    return resolve_device(device)


def may_use_export(model: str, runtime: str, precision: str, device: str) -> bool:
    """Cheaply, before anything is loaded: whether a run will likely label with an ONNX export (a local export
    folder, or a local model folder holding `onnx-int8/` on a CPU without AMX), so that a driver can warm up
    ONNX Runtime instead of importing torch and transformers. A guess only: the real choice is
    `load_predictor`'s."""
    folder = Path(model).expanduser()
    if runtime == "torch" or not folder.is_dir():
        return False
    if (folder / "model.onnx").is_file():
        return True
    return (runtime == "auto" and precision == "auto" and (folder / INT8_EXPORT / "model.onnx").is_file()
            and device in ("auto", "cpu") and run_device(device) == "cpu" and not has_amx())


def int8_export_for(model: str, directory: Path, device: str, precision: str) -> tuple[Path | None, str]:
    """(the int8 export folder `auto` labels with, why) or (None, why not). `directory` is `model` resolved
    to a local folder; a URI model's `onnx-int8/` is fetched beside it only when it exists."""
    if precision != "auto":
        return None, f"--precision {precision}"
    if device != "cpu":
        return None, f"the run is on {device}"
    export = _find_export(model, directory)
    if export is None:
        return None, f"no {INT8_EXPORT}/ export in the model folder"
    if has_amx():
        return None, (f"this CPU has AMX: PyTorch bf16 is the measured fast path here ({INT8_EXPORT}/ on ONNX "
                      "Runtime not measured on AMX)")
    record = json.loads((export / "export.json").read_text())
    if record.get("precision") != "int8":
        return None, f"{INT8_EXPORT}/ holds a {record.get('precision')} export, not int8"
    if record.get("source_weights_sha256") != weights_sha256(directory):
        return None, f"{INT8_EXPORT}/ was exported from other weights than the folder holds now (export it again)"
    check = record.get("check") or {}
    agreement = float(check.get("label_agreement", 0))
    if agreement < MIN_INT8_AGREEMENT:
        return None, (f"{INT8_EXPORT}/ kept {agreement:.2%} of PyTorch fp32's labels in its check, below "
                      f"{MIN_INT8_AGREEMENT:.1%}")
    return export, (f"auto: no AMX on this CPU, and the model's {INT8_EXPORT}/ export kept {agreement:.2%} of "
                    f"PyTorch fp32's labels on {check.get('rows', 0):,} reviews: ONNX Runtime int8 is the fastest "
                    "measured path on such CPUs")


def _find_export(model: str, directory: Path) -> Path | None:
    local = directory / INT8_EXPORT
    if (local / "model.onnx").is_file():
        return local
    if "://" not in str(model):  # a hub id's repository is fetched by patterns of top-level files only
        return None
    from kobert_ops import hub, model_store

    uri, _ = model_store.split_pin(str(model))  # the pin is the weights' digest, not the subfolder's
    try:
        fetched = hub.resolve(f"{uri.rstrip('/')}/{INT8_EXPORT}", allow_patterns=hub.MODEL_FILES)
    except (OSError, model_store.ModelChangedError):  # FileNotFoundError: the folder has no onnx-int8/
        return None
    return fetched if (Path(fetched) / "model.onnx").is_file() else None


def load_predictor(model: str, runtime: str = "auto", device: str = "auto", precision: str = "auto",
                   batch_size: int = 0, max_length: int = 128, threads: int | None = None,
                   tokenizer: str | None = None, auto_bf16: str = "bf16"):
    """The predictor `runtime` asks for on this machine, and the path it runs (`runtime`, `device`,
    `precision`, `why`, `forward_batch_size`): what `kobert label`'s actors and `kobert evaluate` both run.
    `batch_size` 0: the runtime's own rows per forward pass (`FORWARD_BATCH`).

    `onnx`, or `auto` on an export folder: the export on ONNX Runtime. `auto` on a PyTorch folder: its own
    `onnx-int8/` export where `int8_export_for` says so, else PyTorch (`auto_bf16`: the bf16 flavour
    `--precision auto` takes where bf16 is fast). `torch`: PyTorch.

    Raises:
        ValueError: a runtime that does not fit the folder, or a device or precision the export cannot give.
    """
    from kobert_ops import hub
    from kobert_ops.onnx_predictor import check_runtime
    from kobert_ops.predictor import Predictor

    chosen = check_runtime(model, runtime, resolve=True)
    export, why = None, ""
    if chosen == "torch" and runtime == "auto" and precision == "auto" and device in ("auto", "cpu"):
        export, why = int8_export_for(model, hub.resolve(model, allow_patterns=hub.MODEL_FILES),
                                      run_device(device), precision)
    if chosen == "onnx" or export is not None:
        predictor = _onnx_predictor(str(export or model), device, precision, batch_size or FORWARD_BATCH["onnx"],
                                    max_length, threads, None if export else tokenizer)
        if export is None:
            why = "--runtime onnx" if runtime == "onnx" else "auto: the model folder is an ONNX export (model.onnx)"
        return predictor, {"runtime": "onnx", "device": "cpu", "precision": predictor.precision, "why": why,
                           "forward_batch_size": predictor.batch_size}
    predictor = Predictor(model, device=device, precision=precision, batch_size=batch_size or FORWARD_BATCH["torch"],
                          max_length=max_length, num_threads=threads, tokenizer=tokenizer, auto_bf16=auto_bf16)
    return predictor, {"runtime": "torch", "device": predictor.device, "precision": predictor.precision,
                       "why": predictor.reason, "forward_batch_size": predictor.batch_size}


def _onnx_predictor(model: str, device: str, precision: str, batch_size: int, max_length: int,
                    threads: int | None, tokenizer: str | None):
    """An `OnnxPredictor`; refuses a device or precision the export cannot give."""
    from kobert_ops.onnx_predictor import OnnxPredictor

    if device not in ("auto", "cpu"):
        raise ValueError(f"--runtime onnx runs on CPU (ONNX Runtime's CPU provider), not --device {device}")
    predictor = OnnxPredictor(model, batch_size=batch_size, max_length=max_length, num_threads=threads,
                              tokenizer=tokenizer)
    if precision not in ("auto", predictor.precision):
        raise ValueError(f"{model} is a {predictor.precision} ONNX export: --precision {precision} does not apply "
                         f"(export again with --quantize int8 for int8, or pass --precision auto)")
    return predictor
