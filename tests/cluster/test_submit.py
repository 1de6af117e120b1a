"""`kobert submit` against a real Ray head on 127.0.0.1, through the job API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

KOBERT = str(Path(sys.executable).with_name("kobert"))

pytestmark = pytest.mark.ray


def submit(address: str, env: dict, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([KOBERT, "submit", "--address", address, "--", *command],
                          capture_output=True, text=True, timeout=300, env=env)


def test_job_runs_on_the_cluster_and_writes_a_model(ray_head, loopback_env, tmp_path, tokenizer_dir):
    output = tmp_path / "tiny"
    done = submit(ray_head, loopback_env, "kobert", "init-model", "--preset", "tiny",
                  "--tokenizer", str(tokenizer_dir), "--output", str(output))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stderr
    assert "wrote tiny classifier" in done.stdout  # the job's own log, streamed back
    assert (output / "model.safetensors").exists()


def test_job_driver_joins_this_cluster(ray_head, loopback_env):
    # The head has exactly one CPU: a driver that started a new local Ray would see the machine's cores.
    code = "import ray; ray.init(); print('CPUS', ray.cluster_resources()['CPU'])"
    done = submit(ray_head, loopback_env, sys.executable, "-c", code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CPUS 1.0" in done.stdout


def test_failed_job_fails_the_command(ray_head, loopback_env):
    done = submit(ray_head, loopback_env, sys.executable, "-c", "import sys; sys.exit(3)")
    assert done.returncode == 1
    assert "FAILED" in done.stderr


def test_missing_address_is_a_clear_error(loopback_env):
    env = {k: v for k, v in loopback_env.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([KOBERT, "submit", "--", "kobert", "--help"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 2
    assert "--address" in done.stderr
