"""An OpenVINO int8 export's check run again on AVX2 int8 kernels, on a CPU whose own are others (VNNI, AMX).

Why: a CPU without VNNI (an AVX2-only EPYC Zen 3) adds pairs of u8×s8 products in 16 bits, which saturate, where
VNNI and AMX sum in 32 bits; so an export checked on a VNNI CPU is not checked for an AVX2 one, and the difference
shows: the benchmark's base model's OpenVINO int8 export kept 99.50% of PyTorch fp32's labels on the Zen 4's VNNI
kernels and 99.35% on AVX2 ones (2,000 reviews; mean probability difference 0.0052 against 0.0074; 2026-12-07).
OpenVINO's CPU plugin runs its products on oneDNN, which obeys `ONEDNN_MAX_CPU_ISA`: a child process with it set
to AVX2, f32 around the products as on a CPU without bf16 units and no compiled-model cache, runs the kernels an
AVX2 CPU would. It reads back which kernels its products ran on (the compiled model's `primitiveType`:
`jit_gemm_I8` held to AVX2, `brgemm_avx512_I8` not) and the result is kept only when none is an AVX-512 or AMX
one, so a switch that stopped working shows as a warning, not as a false record. ONNX Runtime's kernels have no
such switch: its exports get no such check. `kobert_ops.cpu_path` judges an export by this record on an AVX2 CPU.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from kobert_ops.cpu_facts import cpu_model, int8_kernels

log = logging.getLogger(__name__)

SWITCH = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
PRODUCT_LAYERS = ("FullyConnected", "MatMul")  # where the compiled graph runs its products
NOT_HELD = ("avx512", "amx")  # a product kernel with either in its name did not run as on an AVX2 CPU
TIMEOUT_S = 1800


def applies() -> bool:
    """Whether this CPU's int8 kernels are other than AVX2's, so its check does not hold for an AVX2 CPU."""
    return int8_kernels() in ("VNNI", "AMX")


def labels_on_avx2(export: Path, input_ids: np.ndarray, valid_length: np.ndarray, batch_size: int,
                   num_threads: int | None) -> tuple[np.ndarray, dict] | None:
    """The export's probabilities for the check's rows on AVX2 kernels, and how they were made (`runs_in`, `how`,
    `cpu`, `int8_primitives`: what `export.json` keeps beside the comparison under `check.on_avx2_kernels`), or
    None (logged) where the child failed or did not run on AVX2 kernels."""
    with tempfile.TemporaryDirectory(prefix="kobert-avx2-") as work:
        work = Path(work)
        np.save(work / "input_ids.npy", np.asarray(input_ids))
        np.save(work / "valid_length.npy", np.asarray(valid_length))
        env = {**os.environ, **SWITCH, "KOBERT_OPENVINO_CACHE": "off"}
        done = subprocess.run([sys.executable, "-m", "kobert_ops.avx2_check", str(export), str(work),
                               str(batch_size), str(num_threads or 0)],
                              env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        if done.returncode != 0:
            log.warning("the int8 check on AVX2 kernels failed (not recorded): %s",
                        (done.stderr.strip().splitlines() or ["no output"])[-1])
            return None
        ran = json.loads((work / "ran.json").read_text())
        probabilities = np.load(work / "probabilities.npy")
    primitives = ran["int8_primitives"]
    if not primitives or [name for name in primitives if any(mark in name.lower() for mark in NOT_HELD)]:
        log.warning("the int8 check on AVX2 kernels ran on %s, not AVX2 kernels (not recorded)", primitives)
        return None
    return probabilities, {"runs_in": ran["runs_in"], "how": "ONEDNN_MAX_CPU_ISA=AVX2", "cpu": cpu_model(),
                           "int8_primitives": primitives}


def product_primitives(compiled) -> dict[str, int]:
    """How many of the compiled model's product layers ran on each oneDNN kernel (`primitiveType`)."""
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in PRODUCT_LAYERS:
            counts[info["primitiveType"].astype(str) if "primitiveType" in info else "unknown"] += 1
    return dict(counts)


def main(argv: list[str]) -> None:
    """The child: `python -m kobert_ops.avx2_check EXPORT WORK BATCH_SIZE THREADS`, under `SWITCH`."""
    from kobert_ops.openvino_predictor import OpenVinoPredictor

    export, work, batch_size, threads = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])

    class OnAvx2(OpenVinoPredictor):
        float_hint = "f32"  # an AVX2 CPU has no bf16 units; the plugin reads the real CPU's flags otherwise

    predictor = OnAvx2(export, batch_size=batch_size, num_threads=threads or None)
    got = predictor.predict_encoded(np.load(work / "input_ids.npy"), np.load(work / "valid_length.npy"))
    np.save(work / "probabilities.npy", got.probabilities)
    (work / "ran.json").write_text(json.dumps({"runs_in": predictor.runs_in,
                                               "int8_primitives": product_primitives(predictor.session.compiled)}))


if __name__ == "__main__":
    main(sys.argv[1:])
