"""A short measurement of the paths `--runtime auto` may label with on this CPU, made once per machine and model and
kept on the node: `auto` then takes the fastest path measured here, not the one the CPU's flags suggest.

Why: a CPU's flags say which kernels it has, not which runtime is fastest on them. What was measured so far:
OpenVINO's static int8 at about 1.3× ONNX Runtime's dynamic int8 on an EPYC Zen 4 (VNNI); ONNX Runtime's int8
ahead of PyTorch on an AVX2-only EPYC, where OpenVINO was not timed; on AMX Xeons PyTorch bf16 (AMX tiles) has
never been timed against either int8 export. Rather than guess on such CPUs, `auto` times each path it may take
(the model folder's usable int8 exports, and PyTorch on a CPU with AMX, whose bf16 tiles make it a contender) on
the same synthetic rows of review length, on the threads the run will use, and keeps the fastest. The flags'
order breaks near-ties (a path within `MARGIN` of the fastest and earlier in that order is kept), so a
measurement's noise cannot flip the choice between paths alike in speed.

The result is kept in `$KOBERT_CACHE/path-trials/`, keyed by the CPU, the thread count, the candidates'
identities (each export's graph digest, the weights' digest, rows a pass) and where the runtimes are installed:
later runs on the node read it; another export, other weights, another runtime installed or another CPU measure
again. Label actors on one node take one file lock, so one measures while the others wait (and read its result).
Where no cache folder can be written there is no trial (every run would measure again), nor with
`KOBERT_PATH_TRIAL=off`: then the flags' order holds (`kobert_ops.cpu_path.export_order`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from kobert_ops.paths import writable_cache_dir

log = logging.getLogger(__name__)

MARGIN = 0.05  # a path this close to the fastest, and earlier in the flags' order, is kept
# Synthetic rows per round, all of one review length (NSMC's reviews average 17 ids in KoBERT's vocabulary): every
# pass of a round then costs the same, so a runtime that runs passes side by side (OpenVINO's streams, ONNX
# Runtime's passes on 2 threads) has them evenly shared, as in a long run. 256 rows: two passes of OpenVINO's 128
# rows, four of ONNX Runtime's 64, two of PyTorch's 128.
ROWS, LENGTH = 256, 18
ROUNDS = 2  # timed rounds per path, interleaved across paths (after one untimed round each)
SEED = 0
RUNTIME_PACKAGES = ("openvino", "onnxruntime", "torch")
# Trials a node keeps (about 1 KB each): a node running a few models' hourly jobs measures each model once, and one
# whose model changes every week does not keep a year of results.
KEEP_TRIALS = 64


@dataclass
class Candidate:
    """A path `auto` may take: its name (`openvino-int8`, `onnx-int8`, `torch`), what identifies what it runs
    (a graph's or weights' digest, with its precision), how to open its predictor, and why it may be taken."""

    name: str
    identity: str
    open: Callable[[], object]
    why: str


def enabled() -> bool:
    """Whether `auto` measures: by default where the result can be kept on the node (with no writable cache folder,
    a read-only home say, every run would measure again), not with `KOBERT_PATH_TRIAL=off`; else the flags' order."""
    if os.environ.get("KOBERT_PATH_TRIAL", "").lower() in ("off", "0", "false", "no"):
        return False
    return writable_cache_dir("path-trials") is not None


def synthetic_rows(vocab_size: int, rows: int = ROWS, length: int = LENGTH,
                   seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, valid_length) of `rows` rows of `length` ids drawn past the special tokens: their content does
    not change a forward pass's time, their shape does, so every path gets the same ones."""
    rng = np.random.default_rng(seed)
    return (rng.integers(5, vocab_size, size=(rows, length), dtype=np.int64),
            np.full(rows, length, dtype=np.int64))


def decide(ids_per_s: dict[str, float], order: list[str]) -> str:
    """The path to take: the first in `order` (the flags' order) within `MARGIN` of the fastest measured."""
    fastest = max(ids_per_s.values())
    return next(name for name in order if name in ids_per_s and ids_per_s[name] >= fastest * (1 - MARGIN))


def trial_key(candidates: list[Candidate], threads: int, cpu: dict) -> str:
    """What a kept result holds for: this CPU and thread count, these very paths, these runtime versions."""
    what = {"cpu": cpu, "threads": threads, "rows": ROWS, "length": LENGTH, "seed": SEED,
            "installs": {package: _install_stamp(package) for package in RUNTIME_PACKAGES},
            "candidates": sorted((c.name, c.identity) for c in candidates)}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def _install_stamp(package: str) -> str | None:
    """Where `package` is installed and when its files were written: another version installed changes it. (Read
    without importing the package: every run computes the key, and `importlib.metadata.version` took 36 ms for
    the three runtimes on the Zen 4 where this takes under 1 ms.)"""
    from importlib.util import find_spec

    spec = find_spec(package)
    if spec is None or not spec.origin:
        return None
    try:
        return f"{spec.origin}@{os.stat(spec.origin).st_mtime_ns}"
    except OSError:
        return spec.origin


def kept_choice(candidates: list[Candidate], threads: int, cpu: dict) -> str | None:
    """The name of the path a kept trial chose for these candidates on this machine, or None (no lock taken: a
    guess for warming up, `kobert_ops.cpu_path.may_use_export`)."""
    record = _read(writable_cache_dir("path-trials"), trial_key(candidates, threads, cpu))
    names = {c.name for c in candidates}
    return record["chosen"] if record is not None and record.get("chosen") in names else None


def choose(candidates: list[Candidate], threads: int, cpu: dict) -> tuple[Candidate, object | None, dict]:
    """(the path to take, its predictor if this call opened it, else None, the trial's record). Measures only
    where no kept result holds for these paths on this machine (see the module docstring).

    Raises:
        RuntimeError: no candidate could be opened (each one's error named).
    """
    key = trial_key(candidates, threads, cpu)
    by_name = {c.name: c for c in candidates}
    folder = writable_cache_dir("path-trials")
    with _locked(folder):
        record = _read(folder, key)
        if record is not None and record.get("chosen") in by_name:
            return by_name[record["chosen"]], None, record
        predictors, record = measure(candidates, threads, cpu)
        _write(folder, key, record)
    return by_name[record["chosen"]], predictors[record["chosen"]], record


def measure(candidates: list[Candidate], threads: int, cpu: dict) -> tuple[dict[str, object], dict]:
    """Open every candidate, time them on the same rows (one untimed round each, then `ROUNDS` interleaved: a
    slow spell of the machine falls on all), and keep the chosen one's predictor only."""
    started = time.perf_counter()
    predictors, failed = {}, {}
    for candidate in candidates:
        try:
            predictors[candidate.name] = candidate.open()
        except Exception as error:  # noqa: BLE001 - a path that cannot open here is not a path here
            failed[candidate.name] = f"{type(error).__name__}: {error}"[:300]
    if not predictors:
        raise RuntimeError("no CPU path could be opened: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    vocab_size = min(p.tokenizer.vocab_size for p in predictors.values())
    input_ids, valid_length = synthetic_rows(vocab_size)
    seconds = {name: [] for name in predictors}
    for timed in [False] + [True] * ROUNDS:
        for name, predictor in predictors.items():
            began = time.perf_counter()
            predictor.predict_encoded(input_ids, valid_length)
            if timed:
                seconds[name].append(time.perf_counter() - began)
    ids = int(valid_length.sum())
    ids_per_s = {name: round(ids / min(times), 1) for name, times in seconds.items()}
    chosen = decide(ids_per_s, [c.name for c in candidates])
    for name in list(predictors):
        if name != chosen:
            del predictors[name]
    record = {"chosen": chosen, "ids_per_s": ids_per_s, "failed": failed, "threads": threads, "cpu": cpu,
              "rows": len(valid_length), "ids_per_row": LENGTH, "rounds": ROUNDS,
              "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "trial_s": round(time.perf_counter() - started, 2)}
    log.info("measured the CPU paths once for this machine and model: %s", record)
    return predictors, record


def describe(record: dict) -> str:
    """The trial in words for the run's `why`: each path's speed, the threads, when."""
    figures = ", ".join(f"{name} {speed:,.0f}" for name, speed in
                        sorted(record["ids_per_s"].items(), key=lambda item: -item[1]))
    return (f"the fastest path measured on this CPU ({figures} ids/s on {record['threads']} thread(s), "
            f"{record['measured_at'][:10]})")


@contextmanager
def _locked(folder: Path | None) -> Iterator[None]:
    """One process on the node measures at a time, whatever its paths or threads: two trials at once would time
    each other's load (no lock where no cache folder can be written)."""
    if folder is None:
        yield
        return
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(folder: Path | None, key: str) -> dict | None:
    if folder is None:
        return None
    try:
        return json.loads((folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def _write(folder: Path | None, key: str, record: dict) -> None:
    """Kept whole or not at all (written aside, then renamed); then the folder is pruned to the newest
    `KEEP_TRIALS` (under the node's lock, so no other trial is written meanwhile; a pruned one is measured again)."""
    if folder is None:
        return
    staged = folder / f".{key}.{os.getpid()}.json"
    try:
        staged.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(staged, folder / f"{key}.json")
        kept = [(path.stat().st_mtime, path) for path in folder.glob("*.json") if not path.name.startswith(".")]
        for _, path in sorted(kept, reverse=True)[KEEP_TRIALS:]:
            path.unlink(missing_ok=True)
    except OSError as error:
        log.debug("could not keep the path trial: %s", error)
