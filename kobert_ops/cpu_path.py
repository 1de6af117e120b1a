"""Which CPU path `--runtime auto` labels with on this machine: one of the model's own int8 exports, or PyTorch.

A PyTorch model folder may hold int8 exports of itself: `openvino-int8/` (`kobert export --model M --format
openvino --quantize int8 --output M/openvino-int8`) and `onnx-int8/` (`--format onnx`). An export is a path `auto`
may take where all of these hold (`usable_exports`), and the run says why it took it:

- the run is on a CPU and `--precision` is `auto` (a forced precision is PyTorch's);
- the export was made from these very weights (`export.json` records their sha256: a folder retrained after
  its export must not label with the old graph);
- its check kept at least 99.5% of PyTorch fp32's labels on real reviews (`export.json`), so a model whose
  int8 graph disagrees more is never labeled in int8 unless the user asks for it with `--runtime onnx` or
  `--runtime openvino`. The check holds where it ran on kernels that compute the same integers as this CPU's:
  VNNI and AMX alike, every kind for an export whose products cannot saturate (ONNX Runtime's, 7-bit weights).
  On an AVX2-only CPU, whose int8 sums saturate where VNNI's and AMX's do not, an export checked on other kernels
  is judged by its check on AVX2 kernels (`kobert_ops.avx2_check`), and not taken without one.

On a CPU with AMX, PyTorch (bf16 on its tiles) is a path too. Where there is more than one path, `auto` takes the
fastest measured on this machine (`measured_choice`: `kobert_ops.path_trial`, once per machine and model, kept on
the node). Where there is one, or the trial is off (`KOBERT_PATH_TRIAL=off`), the CPU's flags decide
(`int8_export_for`), from what was measured on each kind (bench/results/onnx_throughput.md): no export on an AMX
CPU (PyTorch bf16 was its fast path, before any int8 export was timed there); of two exports OpenVINO's first
where the CPU has VNNI (about 1.3× ONNX Runtime's int8 on an EPYC Zen 4), ONNX Runtime's elsewhere (the fastest on
an AVX2-only EPYC, where OpenVINO was not timed), the other where the first fails a check. Everything else stays
on PyTorch (`kobert_ops.predictor` picks bf16 or fp32 per CPU).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kobert_ops import cpu_facts, file_digest
from kobert_ops.export_kinds import EXPORT_GRAPHS, INT8_EXPORTS, RUNTIME_NAMES

INT8_EXPORT = INT8_EXPORTS["onnx"]
MIN_INT8_AGREEMENT = 0.995  # as kobert_ops.onnx_export.MIN_AGREEMENT["int8"], without importing onnx
# int8 kernels that add u8×s8 products in 32 bits: the same integers on either (AVX2's add pairs in 16 bits)
EXACT_INT8_KERNELS = ("VNNI", "AMX")
# Rows per forward pass where the caller leaves it to the runtime. PyTorch's 128 was tuned on the fp32/bf16
# paths; ONNX Runtime int8 labeled 3,000 reviews of the base preset at 198 reviews/s in passes of 64 against 189
# in passes of 128 (EPYC Zen 4, 2 threads, 2026-12-06): fewer rows per pass pad less, and its int8 GEMMs stay
# efficient at ~1,100 token rows. OpenVINO's static int8 graph, same probe (2026-12-07): 224.5 / 228.9 / 235.5
# reviews/s in passes of 32 / 64 / 128.
FORWARD_BATCH = {"torch": 128, "onnx": 64, "openvino": 128}
# What each runtime's int8 export was measured to be on the CPUs it is chosen for (docs/onnx.md)
FAST_PATH = {"openvino": "OpenVINO's static int8 is the fastest measured path on a CPU with VNNI",
             "onnx": "ONNX Runtime's int8 was measured faster than PyTorch on CPUs without AMX"}


def weights_sha256(directory: str | Path) -> str:
    """sha256 over a model folder's weight files (`*.safetensors`, then `*.bin`, sorted by name). Kept while the
    files stay as they are (`kobert_ops.file_digest`: for the process, and for later runs on the node), so a label
    run's warm-up thread hashes them at most once while inputs are checked and `auto`'s export check finds the
    digest ready."""
    directory = Path(directory)
    files = sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin"))
    return file_digest.cached("sha256 of weights", files, lambda: file_digest.sha256_of(files))


def export_order() -> list[str]:
    """The runtimes whose int8 export `auto` tries, fastest measured first on this CPU: OpenVINO on a CPU with
    VNNI; ONNX Runtime first elsewhere (measured fastest on an AVX2-only EPYC, where OpenVINO was not measured)."""
    return ["openvino", "onnx"] if cpu_facts.has_vnni() else ["onnx", "openvino"]


def run_device(device: str) -> str:
    """`--device` resolved; `auto` on a machine without GPU device files is the CPU, known without importing
    torch (`kobert_ops.predictor.resolve_device` asks torch otherwise)."""
    if device == "cpu" or device == "auto" and not cpu_facts.gpu_device_files():
        return "cpu"
    from kobert_ops.predictor import resolve_device

    return resolve_device(device)


def may_use_export(model: str, runtime: str, precision: str, device: str, threads: int | None = None,
                   batch_size: int = 0) -> str:
    """Cheaply, before anything is loaded: the runtime (`onnx`, `openvino`) a run will likely label with an
    export of, or "" (a local export folder; a local model folder holding an int8 export that the path trial kept
    for this machine, `kobert_ops.path_trial`, or else that the CPU's flags rank first on a CPU without AMX), so
    that a driver can warm up that runtime instead of importing torch and transformers. A guess only: the real
    choice is `load_predictor`'s."""
    folder = Path(model).expanduser()
    if runtime == "torch" or not folder.is_dir():
        return ""
    for kind, graph in EXPORT_GRAPHS.items():
        if (folder / graph).is_file():
            return kind
    if not (runtime == "auto" and precision == "auto" and device in ("auto", "cpu") and run_device(device) == "cpu"):
        return ""
    present = [kind for kind in export_order() if (folder / INT8_EXPORTS[kind] / EXPORT_GRAPHS[kind]).is_file()]
    if not present:
        return ""
    from kobert_ops import path_trial

    if len(present) + cpu_facts.has_amx() > 1 and path_trial.enabled():  # where a trial may have chosen among paths
        usable, _ = usable_exports(str(folder), folder, "cpu", "auto")
        candidates = trial_candidates(str(folder), folder, "cpu", batch_size, 128, threads, None, "bf16-full",
                                      usable)
        kept = (path_trial.kept_choice(candidates, threads or os.cpu_count() or 1, trial_cpu())
                if len(candidates) > 1 else None)
        if kept is not None:
            return "" if _kind_of(kept) == "torch" else _kind_of(kept)
    return "" if cpu_facts.has_amx() else present[0]


def int8_export_for(model: str, directory: Path, device: str, precision: str) -> tuple[Path | None, str]:
    """(the int8 export folder `auto` labels with by the CPU's flags, why) or (None, why not). `directory` is
    `model` resolved to a local folder; a URI model's export folders are fetched beside it only when they exist.
    Of a folder's exports (`INT8_EXPORTS`), the first in `export_order` that passes the checks is chosen. (Where
    the paths are measured, `kobert_ops.path_trial`, `load_predictor` chooses among `usable_exports` instead.)"""
    return _by_flags(*usable_exports(model, directory, device, precision))


def _by_flags(usable: list[tuple[str, Path, str]], why_not: str) -> tuple[Path | None, str]:
    """`int8_export_for`'s choice among a folder's `usable_exports`."""
    if not usable:
        return None, why_not
    if cpu_facts.has_amx():
        return None, ("this CPU has AMX: PyTorch bf16 is the measured fast path here (int8 exports not measured "
                      "on AMX)")
    kind, export, clause = usable[0]
    return export, f"auto: no AMX on this CPU, and {clause}: {FAST_PATH[kind]}"


def usable_exports(model: str, directory: Path, device: str,
                   precision: str) -> tuple[list[tuple[str, Path, str]], str]:
    """([(runtime, export folder, what its check showed)] of the folder's int8 exports `auto` may label with, in
    `export_order`), and why none may where the list is empty."""
    if precision != "auto":
        return [], f"--precision {precision}"
    if device != "cpu":
        return [], f"the run is on {device}"
    found = [(kind, export) for kind in export_order()
             if (export := _find_export(model, directory, kind)) is not None]
    if not found:
        return [], f"no {' or '.join(name + '/' for name in INT8_EXPORTS.values())} export in the model folder"
    usable, reasons = [], []
    for kind, export in found:
        ok, clause = _judge(kind, export, directory)
        if ok:
            usable.append((kind, export, clause))
        else:
            reasons.append(clause)
    return usable, "" if usable else "; ".join(reasons)


def _judge(kind: str, export: Path, directory: Path) -> tuple[bool, str]:
    """Whether `auto` may label with this int8 export of the folder's weights, and what its check showed (or why
    not)."""
    name = INT8_EXPORTS[kind]
    record = json.loads((export / "export.json").read_text())
    if record.get("precision") != "int8":
        return False, f"{name}/ holds a {record.get('precision')} export, not int8"
    if record.get("source_weights_sha256") != weights_sha256(directory):
        return False, f"{name}/ was exported from other weights than the folder holds now (export it again)"
    check, on = _check_for_this_cpu(name, record.get("check") or {}, record.get("quantization") or {})
    if check is None:
        return False, on
    agreement = float(check.get("label_agreement", 0))
    if agreement < MIN_INT8_AGREEMENT:
        return False, (f"{name}/ kept {agreement:.2%} of PyTorch fp32's labels {on.strip() or 'in its check'}, "
                       f"below {MIN_INT8_AGREEMENT:.1%}")
    return True, (f"the model's {name}/ export kept {agreement:.2%} of PyTorch fp32's labels on "
                  f"{check.get('rows', 0):,} reviews{on}")


def _check_for_this_cpu(name: str, check: dict, quantization: dict) -> tuple[dict | None, str]:
    """(the export's check that holds on this CPU's int8 kernels, and how the reason says where it ran), or
    (None, why none holds).

    A check holds where it ran on kernels that compute the same integers: VNNI and AMX alike, or any where the
    export's products cannot saturate (`saturation_free`: ONNX Runtime's weights within 7 bits). On an AVX2 CPU an
    export checked on other kernels holds only by its check on AVX2 kernels (`kobert_ops.avx2_check`); without one
    it is not taken. Elsewhere a check made on other kernels (AVX2's) is taken, and the reason says so."""
    checked_on = (check.get("cpu") or {}).get("int8_kernels")
    here = cpu_facts.int8_kernels()
    if (not checked_on or checked_on == here or here == "unknown" or quantization.get("saturation_free")
            or (checked_on in EXACT_INT8_KERNELS and here in EXACT_INT8_KERNELS)):
        return check, ""
    if here == "AVX2":
        held = check.get("on_avx2_kernels")
        if held is None:
            return None, (f"{name}/ was checked on {checked_on} int8 kernels only: this CPU's AVX2 ones add its "
                          f"products in 16-bit pairs, which saturate (export it again with this release, which "
                          f"checks it on AVX2 kernels too)")
        return held, f" on AVX2 int8 kernels (its check held to them on {held.get('cpu') or 'another CPU'})"
    return check, f" with {checked_on} int8 kernels (this CPU runs {here} ones: export it again here to check those)"


def _find_export(model: str, directory: Path, kind: str) -> Path | None:
    name, graph = INT8_EXPORTS[kind], EXPORT_GRAPHS[kind]
    local = directory / name
    if (local / graph).is_file():
        return local
    if "://" not in str(model):  # a hub id's repository is fetched by patterns of top-level files only
        return None
    from kobert_ops import hub, model_store

    uri, _ = model_store.split_pin(str(model))  # the pin is the weights' digest, not the subfolder's
    try:
        fetched = hub.resolve(f"{uri.rstrip('/')}/{name}", allow_patterns=hub.MODEL_FILES)
    except (OSError, model_store.ModelChangedError):  # FileNotFoundError: the folder has no such export
        return None
    return fetched if (Path(fetched) / graph).is_file() else None


def load_predictor(model: str, runtime: str = "auto", device: str = "auto", precision: str = "auto",
                   batch_size: int = 0, max_length: int = 128, threads: int | None = None,
                   tokenizer: str | None = None, auto_bf16: str = "bf16"):
    """The predictor `runtime` asks for on this machine, and the path it runs (`runtime`, `device`,
    `precision`, `why`, `forward_batch_size`): what `kobert label`'s actors and `kobert evaluate` both run.
    `batch_size` 0: the runtime's own rows per forward pass (`FORWARD_BATCH`).

    `onnx` or `openvino`, or `auto` on an export folder: the export on its runtime. `auto` on a PyTorch folder on
    a CPU: where it may take more than one path (its usable int8 exports, and PyTorch on an AMX CPU), the fastest
    measured on this machine (`measured_choice`); else its one usable int8 export where `int8_export_for` says
    so, else PyTorch (`auto_bf16`: the bf16 flavour `--precision auto` takes where bf16 is fast). `torch`: PyTorch.

    Raises:
        ValueError: a runtime that does not fit the folder, or a device or precision the export cannot give.
    """
    from kobert_ops import hub
    from kobert_ops.onnx_predictor import check_runtime, folder_runtime

    chosen = check_runtime(model, runtime, resolve=True)
    export, why = None, ""
    if chosen == "torch" and runtime == "auto" and precision == "auto" and device in ("auto", "cpu"):
        directory, on = hub.resolve(model, allow_patterns=hub.MODEL_FILES), run_device(device)
        usable, why_not = usable_exports(model, directory, on, precision)  # each export's record read once
        measured = measured_choice(model, directory, on, batch_size, max_length, threads, tokenizer, auto_bf16,
                                   usable)
        if measured is not None:
            return measured
        export, why = _by_flags(usable, why_not)
    if chosen != "torch" or export is not None:
        kind = folder_runtime(export) if export is not None else chosen
        predictor = _export_predictor(kind, str(export or model), device, precision,
                                      batch_size or FORWARD_BATCH[kind], max_length, threads,
                                      None if export else tokenizer)
        if export is None:
            why = (f"--runtime {kind}" if runtime == kind
                   else f"auto: the model folder is an {RUNTIME_NAMES[kind]} export ({EXPORT_GRAPHS[kind]})")
        return predictor, _path_of(kind, predictor, why)
    predictor = _torch_predictor(model, device, precision, batch_size, max_length, threads, tokenizer, auto_bf16)
    return predictor, _path_of("torch", predictor, predictor.reason)


def measured_choice(model: str, directory: Path, device: str, batch_size: int, max_length: int,
                    threads: int | None, tokenizer: str | None, auto_bf16: str,
                    usable: list[tuple[str, Path, str]]):
    """(predictor, path) of the fastest path measured on this machine (`kobert_ops.path_trial`) where `auto` on a
    PyTorch folder may take more than one (`trial_candidates`). None where there is one path or none, the run is
    not on the CPU, or the trial is off. `usable`: the folder's `usable_exports`."""
    from kobert_ops import path_trial

    if device != "cpu" or not path_trial.enabled():
        return None
    candidates = trial_candidates(model, directory, device, batch_size, max_length, threads, tokenizer, auto_bf16,
                                  usable)
    if len(candidates) < 2:
        return None
    candidate, predictor, record = path_trial.choose(candidates, threads or os.cpu_count() or 1, trial_cpu())
    if predictor is None:
        predictor = candidate.open()
    kind = _kind_of(candidate.name)
    why = f"auto: {path_trial.describe(record)}; {candidate.why}"
    if kind == "torch":
        why += f" ({predictor.reason})"
    return predictor, _path_of(kind, predictor, why)


def trial_candidates(model: str, directory: Path, device: str, batch_size: int, max_length: int,
                     threads: int | None, tokenizer: str | None, auto_bf16: str,
                     usable: list[tuple[str, Path, str]]) -> list:
    """The paths `auto` may take for a PyTorch folder on this CPU, as `path_trial.Candidate`s (nothing opened):
    its `usable` int8 exports (`usable_exports`, in the flags' order), then PyTorch where the CPU has AMX (bf16
    tiles)."""
    from kobert_ops import path_trial

    candidates = [path_trial.Candidate(
        INT8_EXPORTS[kind], f"{kind} {_graph_sha256(export)}, {batch_size or FORWARD_BATCH[kind]} rows a pass",
        lambda kind=kind, export=export: _export_predictor(kind, str(export), device, "auto",
                                                           batch_size or FORWARD_BATCH[kind], max_length, threads,
                                                           None),
        clause) for kind, export, clause in usable]
    if cpu_facts.has_amx():
        candidates.append(path_trial.Candidate(
            "torch",
            f"torch {auto_bf16} {weights_sha256(directory)}, {batch_size or FORWARD_BATCH['torch']} rows a pass",
            lambda: _torch_predictor(model, device, "auto", batch_size, max_length, threads, tokenizer,
                                     auto_bf16),
            "PyTorch on this CPU's AMX tiles"))
    return candidates


def trial_cpu() -> dict:
    """The CPU a path trial holds for."""
    return {"model": cpu_facts.cpu_model(), "int8_kernels": cpu_facts.int8_kernels(), "amx": cpu_facts.has_amx()}


def _kind_of(candidate: str) -> str:
    """The runtime of a trial candidate's name (`openvino-int8` → openvino, `torch` → torch)."""
    return next((kind for kind, name in INT8_EXPORTS.items() if name == candidate), "torch")


def _graph_sha256(export: Path) -> str:
    """The export's graph digest, as its `export.json` records it (written by `kobert export`)."""
    return str(json.loads((export / "export.json").read_text()).get("model_sha256"))


def _path_of(kind: str, predictor, why: str) -> dict:
    """The path a predictor runs, for the manifest and the run summary."""
    if kind == "torch":
        return {"runtime": "torch", "device": predictor.device, "precision": predictor.precision, "why": why,
                "forward_batch_size": predictor.batch_size}
    path = {"runtime": kind, "device": "cpu", "precision": predictor.precision, "why": why,
            "forward_batch_size": predictor.batch_size,
            "passes_at_once": predictor.passes}  # each on its share of the threads
    if getattr(predictor, "runs_in", None):  # OpenVINO: the float precision around the int8 products
        path["runs_in"] = predictor.runs_in
    return path


def _torch_predictor(model: str, device: str, precision: str, batch_size: int, max_length: int,
                     threads: int | None, tokenizer: str | None, auto_bf16: str):
    from kobert_ops.predictor import Predictor

    return Predictor(model, device=device, precision=precision, batch_size=batch_size or FORWARD_BATCH["torch"],
                     max_length=max_length, num_threads=threads, tokenizer=tokenizer, auto_bf16=auto_bf16)


def _export_predictor(kind: str, model: str, device: str, precision: str, batch_size: int, max_length: int,
                      threads: int | None, tokenizer: str | None):
    """An `OnnxPredictor` (`kind` onnx) or `OpenVinoPredictor` (openvino); refuses a device or precision the
    export cannot give."""
    from kobert_ops.onnx_predictor import OnnxPredictor

    if kind == "openvino":
        from kobert_ops.openvino_predictor import OpenVinoPredictor as predictor_class
    else:
        predictor_class = OnnxPredictor
    engines = {"onnx": "ONNX Runtime's CPU provider", "openvino": "OpenVINO's CPU runtime"}
    if device not in ("auto", "cpu"):
        raise ValueError(f"--runtime {kind} runs on CPU ({engines[kind]}), not --device {device}")
    predictor = predictor_class(model, batch_size=batch_size, max_length=max_length, num_threads=threads,
                                tokenizer=tokenizer)
    if precision not in ("auto", predictor.precision):
        raise ValueError(f"{model} is a {predictor.precision} {RUNTIME_NAMES[kind]} export: --precision {precision} "
                         f"does not apply (export again with --quantize int8 for int8, or pass --precision auto)")
    return predictor
