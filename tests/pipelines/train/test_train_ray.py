"""`kobert train` on a real local Ray with two gloo DDP workers, on real NSMC reviews.

Proves what a user relies on: the two ranks hold bit-identical weights after every epoch (gradients really
are all-reduced), a worker killed after a checkpoint resumes from it, `--resume` continues a failed run, and
the output is a model that plain `transformers` and `kobert evaluate` load, with accuracy above a floor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main

pytestmark = [pytest.mark.ray, pytest.mark.timeout(400)]

# the installed `kobert` entry point itself (what a user types), next to this interpreter
KOBERT = [str(Path(sys.executable).with_name("kobert"))] if Path(sys.executable).with_name("kobert").exists() \
    else [sys.executable, "-m", "pipelines.cli"]
FAST = ["--model", "tiny", "--num-workers", "2", "--max-length", "64", "--batch-size", "32"]


def last_json_line(stdout: str) -> dict:
    """The command's JSON result: Ray may print worker/raylet log lines to stdout after it."""
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def _metrics(output):
    return json.loads((output / "metrics.json").read_text())


def test_ranks_stay_identical_and_a_killed_worker_resumes(local_ray, nsmc_2k, tmp_path, monkeypatch, capsys):
    output = tmp_path / "run"
    monkeypatch.setenv("KOBERT_FAULT_AFTER_EPOCH", "1")  # rank 1 exits right after epoch 1's checkpoint
    code = main(["train", *FAST, "--train", str(nsmc_2k / "train.parquet"), "--eval", str(nsmc_2k / "eval.parquet"),
                 "--epochs", "2", "--max-failures", "1", "--output", str(output)])
    assert code == 0
    history = _metrics(output)["history"]
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert history[0]["resumed_from_epoch"] == 0
    assert history[1]["resumed_from_epoch"] == 1  # the restarted workers began after epoch 1, not from scratch
    assert history[1]["initial_fingerprint"] == history[0]["fingerprints"][0]  # ...with epoch 1's weights
    for entry in history:
        rank0, rank1 = entry["fingerprints"]
        assert rank0 == rank1  # all-reduced gradients keep both replicas bit-identical
        assert rank0 != entry["initial_fingerprint"]  # and training steps did change them
        assert entry["world_size"] == 2 and entry["train_samples"] == 2000
    assert history[0]["fingerprints"][0] != history[1]["fingerprints"][0]
    assert (output / "model.safetensors").is_file() and (output / "report.md").is_file()
    printed = last_json_line(capsys.readouterr().out)
    assert printed["best_epoch"] in (1, 2)


def test_resume_flag_continues_a_failed_three_class_run(local_ray, nsmc_ternary, tmp_path, monkeypatch):
    output = tmp_path / "run"
    argv = ["train", *FAST, "--train", str(nsmc_ternary / "train.parquet"), "--eval",
            str(nsmc_ternary / "eval.parquet"), "--epochs", "2", "--max-steps-per-epoch", "15", "--output", str(output)]
    monkeypatch.setenv("KOBERT_FAULT_AFTER_EPOCH", "1")
    assert main([*argv, "--max-failures", "0"]) == 1  # no automatic retry: the run fails after epoch 1
    assert not (output / "metrics.json").exists()
    assert main(argv) == 2  # a second run into the same output must not silently resume or clobber it
    monkeypatch.delenv("KOBERT_FAULT_AFTER_EPOCH")
    assert main([*argv, "--resume"]) == 0
    history = _metrics(output)["history"]
    assert [(e["epoch"], e["resumed_from_epoch"]) for e in history] == [(1, 0), (2, 1)]
    assert _metrics(output)["best_eval"]["labels"] == ["부정", "중립", "긍정"]
    assert len(_metrics(output)["best_eval"]["confusion_matrix"]) == 3


def test_cli_trains_tiny_on_6k_reviews_and_evaluate_reports_accuracy(local_ray, nsmc_6k, tmp_path):
    output = tmp_path / "tiny-6k"
    env = {**os.environ, "RAY_ADDRESS": local_ray}
    trained = subprocess.run(
        [*KOBERT, "train", "--model", "tiny", "--num-workers", "2", "--epochs", "1",
         "--train", str(nsmc_6k / "train.parquet"), "--eval", str(nsmc_6k / "eval.parquet"),
         "--output", str(output)],
        env=env, capture_output=True, text=True, timeout=360,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert last_json_line(trained.stdout)["eval_accuracy"] > 0.68

    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(output)
    assert model.config.id2label == {0: "부정", 1: "긍정"}

    evaluated = subprocess.run(
        [*KOBERT, "evaluate", "--model", str(output), "--data",
         str(nsmc_6k / "test.parquet"), "--output", str(tmp_path / "test-eval")],
        capture_output=True, text=True, timeout=120,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    line = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert line["n"] == 750 and line["accuracy"] > 0.68 and 0.6 < line["macro_f1"] <= 1.0
    assert (tmp_path / "test-eval" / "confusion_matrix.png").is_file()
    for name in ("training_curves.png", "confusion_matrix.png", "report.md", "metrics.json"):
        assert (output / name).is_file(), name
