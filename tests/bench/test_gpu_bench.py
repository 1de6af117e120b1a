"""bench/gpu.sh's smoke mode: every part the GPU call runs (label on the local engine and through Ray Data,
train through Ray Train, the ONNX Runtime provider check) runs on the CPU with the tiny preset, so a lent GPU's
few minutes are not spent finding a broken script. Its figures are not GPU figures and stay in the work folder."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_gpu_bench_smoke_runs_every_part_on_the_cpu(tmp_path):
    results = ROOT / "bench" / "results"
    before = sorted(path.name for path in results.iterdir())
    completed = subprocess.run(["bash", "bench/gpu.sh", "--smoke", "--rows", "1200", "--train-rows", "240",
                                "--work", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                               env={**os.environ, "PYTHON": str(Path(os.sys.executable))})
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    figures = json.loads((tmp_path / "gpu-smoke.json").read_text())
    assert figures["smoke"] and figures["preset"] == "tiny"
    for engine in ("label_local", "label_ray"):
        assert figures[engine]["rows_labeled"] == 1200 and figures[engine]["reviews_per_s"] > 0, figures[engine]
        assert figures[engine]["path"]["device"] == "cpu"
    assert figures["train"]["train_samples"] > 0 and figures["train"]["samples_per_s"] > 0
    assert figures["onnxruntime_cuda"]["measured"] is False and figures["onnxruntime_cuda"]["why"]
    assert sorted(path.name for path in results.iterdir()) == before  # no CPU figure among the GPU results
