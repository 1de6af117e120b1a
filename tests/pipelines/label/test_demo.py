"""`kobert demo`: fine-tunes its tiny model once on reviews it does not label, labels real reviews, prints
the summary and the agreement with the reviewers' ratings, and nothing of Ray's internals (issue 13): its
console is progress, epoch lines, the summary and the log file's name; the noise is in that log file."""

import os
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.pipelines.label.helpers import KOBERT, assert_exactly_once

# Every line a person may see. Anything else (Ray's token-auth notices, TrainController or raylet lines,
# core_worker.cc errors, Ray Data's logging_progress blocks, metric dicts, transformers' bars) fails the test.
ALLOWED = [
    r"fine-tuning a tiny model on [\d,]+ reviews .* on local Ray",
    r"using the demo's fine-tuned model .*",
    r"(training|label): .*\d+/\d+ .*",  # progress lines, tqdm's format off a terminal
    r"epoch \d+/\d+: train loss [\d.]+, eval_loss [\d.]+, eval_accuracy [\d.]+, .* samples/s, \d+ s",
    r"fine-tuned: eval accuracy [\d.]+ \(.*report\.md\)",
    r"labeling [\d,]+ real reviews from .* into .* \(engine (ray|local)\)",
    r"labeled [\d,]+ of [\d,]+ rows from 1 file\(s\) in .*",
    r"  (model|run|label|path|truncated|rejected|labels|report|manifest|delta) .*",
    r"  log         (?P<log>\S+)( \(Ray's own: .*\))?",
    r"  agreement with the reviewers' star ratings .*: [\d.]+% of [\d,]+ reviews",
]
NOISE = ["logging_progress", "core_worker", "raylet", "TrainController", "RayTrainWorker", "Token authentication",
         "auth_token", "Started a local Ray", "DatasetManager", "Deprecat", "Writing model shards", "Loading weights"]


def kobert_demo(artifacts: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({"TOKENIZERS_PARALLELISM": "false", "KOBERT_LOG_DIR": str(artifacts / "logs")})
    return subprocess.run([*KOBERT, "demo", "--rows", "400", "--train-rows", "600", "--train-epochs", "1",
                           "--artifacts", str(artifacts), *extra], capture_output=True, text=True, env=env,
                          timeout=600)


def console_lines(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    strays = [line for line in lines if not any(re.fullmatch(pattern, line) for pattern in ALLOWED)]
    assert not strays, strays
    assert not [line for line in lines if any(noise in line for noise in NOISE)]
    return lines


def log_file(lines: list[str]) -> Path:
    named = [m.group("log") for line in lines if (m := re.fullmatch(ALLOWED[8], line))]
    assert len(named) == 1, lines
    return Path(named[0])


@pytest.mark.ray
def test_demo_fine_tunes_once_labels_real_reviews_and_shows_only_progress_and_summary(tmp_path):
    first = console_lines(kobert_demo(tmp_path))
    assert sum(line.startswith("fine-tuning a tiny model") for line in first) == 1
    assert any(line.startswith("epoch 1/1: ") for line in first)
    assert any(line.startswith("training: ") for line in first) and any(line.startswith("label: ") for line in first)
    assert any(line.startswith("labeled ") and "of 400 rows" in line for line in first)
    assert any("agreement with the reviewers' star ratings" in line for line in first)
    log = log_file(first).read_text(errors="replace")  # the noise was moved there, not lost
    assert "Started a local Ray instance" in log and "training tiny on" in log
    assert "core_worker" in log  # Ray's C++ line about actor constructor arguments (ray-project/ray#53727)

    demo = tmp_path / "demo"
    assert_exactly_once([demo / "input" / "reviews-400.parquet"], demo / "labels")
    # the labeled reviews are the file's first 400; training used only rows from its end
    trained_on = set(pq.read_table(demo / "train-source.parquet")["review_id"].to_pylist())
    labeled = set(pq.read_table(demo / "input" / "reviews-400.parquet")["review_id"].to_pylist())
    assert not trained_on & labeled

    model_files = sorted(p.stat().st_mtime for p in (demo / "model").iterdir())
    second = console_lines(kobert_demo(tmp_path, "--engine", "local"))  # the same model, output replaced
    assert sorted(p.stat().st_mtime for p in (demo / "model").iterdir()) == model_files
    assert not any(line.startswith("fine-tuning") for line in second)
    assert any(line.startswith("using the demo's fine-tuned model") for line in second)
    assert_exactly_once([demo / "input" / "reviews-400.parquet"], demo / "labels")
