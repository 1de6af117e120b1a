"""The rule of `kobert`'s exit (issue 13): every failure is one line on stderr; exit 2 for the user's mistake
(a `UserError`, a missing file, a `ValueError` this project raised about its input), exit 1 for a failure of
the run, whose traceback goes to the log file the line names (and to the console only with `-v`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# `kobert init-model` with its run replaced by one that fails as `sys.argv[1]` says
PROGRAM = """
import sys
import numpy as np
import pipelines.init_model as init_model
from pipelines.errors import UserError
def run(args):
    kind = sys.argv[1]
    if kind == "user":
        raise UserError("--input nowhere.parquet: no such file; give a Parquet file")
    if kind == "ours":
        from kobert_ops.model import bert_config
        bert_config("huge")  # the project's own check of what the user asked for
    if kind == "library":
        np.zeros(-1)  # numpy's own ValueError: a bug or a broken run, not something the user typed
    raise RuntimeError("the actor died\\nsecond line of detail")
init_model.run = run
from pipelines.cli import main
sys.exit(main([*sys.argv[2:], "init-model", "--preset", "tiny", "--output", "x"]))
"""


def kobert(tmp_path, kind: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROGRAM, kind, *flags], capture_output=True, text=True, timeout=120,
                          cwd=str(ROOT), env={"KOBERT_LOG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("kind, line", [
    ("user", "kobert init-model: error: --input nowhere.parquet: no such file; give a Parquet file"),
    ("ours", "kobert init-model: error: unknown preset 'huge'; choose one of ['base', 'small', 'tiny']"),
])
def test_the_users_mistake_is_one_line_and_exit_2(tmp_path, kind, line):
    done = kobert(tmp_path, kind)
    assert (done.returncode, done.stderr.strip().splitlines()) == (2, [line])


@pytest.mark.parametrize("kind, message", [
    ("library", "ValueError: negative dimensions are not allowed"),
    ("failure", "RuntimeError: the actor died"),
])
def test_a_failure_of_the_run_is_one_line_exit_1_naming_the_log_with_the_traceback(tmp_path, kind, message):
    """A library's ValueError used to be exit 2 (the user's mistake); any other exception was a traceback."""
    done = kobert(tmp_path, kind)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    log = next(tmp_path.glob("init-model-*.log"))
    assert lines[0] == f"kobert init-model: failed: {message}; traceback in {log} (-v prints it)"
    assert "Traceback (most recent call last)" in log.read_text()


def test_verbose_prints_the_traceback_too(tmp_path):
    done = kobert(tmp_path, "failure", "-v")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("kobert init-model: failed: RuntimeError: the actor died")


def test_a_command_line_imports_only_its_own_subcommand():
    """An hourly `kobert label` does not pay for importing `kobert submit`'s job client and the rest (~0.13 s);
    `kobert --help` still lists every subcommand."""
    probe = ("import sys; from pipelines.cli import build_parser; build_parser({argv}); "
             "print(sorted(m for m in ('pipelines.label.command', 'cluster.submit', 'pipelines.train.command') "
             "if m in sys.modules))")

    def imported(argv):
        return subprocess.run([sys.executable, "-c", probe.format(argv=argv)], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert imported(["-v", "label", "--model", "m", "--input", "i", "--output", "o"]) == "['pipelines.label.command']"
    assert imported(None) == "['cluster.submit', 'pipelines.label.command', 'pipelines.train.command']"
    assert imported(["labl"]) == "['cluster.submit', 'pipelines.label.command', 'pipelines.train.command']"


KOBERT = str(Path(sys.executable).with_name("kobert"))


@pytest.mark.parametrize("command", ["train", "label"])
def test_a_job_api_address_in_ray_address_is_one_line_and_exit_2(tmp_path, tiny_model_dir, command):
    """The README exports RAY_ADDRESS=http://HEAD:8265 for `kobert submit`; a command run in that shell joins a
    cluster through RAY_ADDRESS, which must then be a GCS or ray:// address. Before: Ray's multi-line ValueError
    (train: "failed: ValueError ... To fix this, either:;", exit 1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"text": ["정말 재밌어요", "별로였다"], "label": [1, 0]}), data)
    argv = {"train": ["train", "--model", "tiny", "--train", str(data), "--eval", str(data), "--num-workers", "1",
                      "--output", str(tmp_path / "run")],
            "label": ["label", "--model", str(tiny_model_dir), "--input", str(data), "--output",
                      str(tmp_path / "labels"), "--engine", "ray"]}[command]
    done = subprocess.run([KOBERT, *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_ADDRESS": "http://127.0.0.1:8265",
                               "KOBERT_LOG_DIR": str(tmp_path)})
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert "RAY_ADDRESS" in line and "http://127.0.0.1:8265" in line and "kobert submit" in line, line
