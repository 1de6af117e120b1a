"""Bad input to `kobert label`, as a new user gives it, into an output that already holds a good run (issue 13,
acceptance 1): each kind is exit 2, exactly one line on stderr that names the thing and what to do, and the
earlier output is untouched, byte for byte. docs/failures.md lists these classes with their messages.

(A corrupt data page, a schema change between runs and invalid UTF-8 rows have their own tests in
test_cli.py, on both engines; a planted pickle in tests/kobert_ops/test_safe_weights.py for every command.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.kobert_ops.test_safe_weights import planted_model
from tests.pipelines.label.helpers import KOBERT


def kobert_label(model, source, output, *extra, cwd=None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    return subprocess.run([*KOBERT, "label", "--model", str(model), "--input", str(source), "--output", str(output),
                           "--engine", "local", "--threads-per-actor", "1", "--no-progress", "--incremental", *extra],
                          capture_output=True, text=True, timeout=240, cwd=cwd,
                          env={**environment, "TOKENIZERS_PARALLELISM": "false"})


def snapshot(output: Path) -> dict[str, bytes]:
    return {str(path.relative_to(output)): path.read_bytes() for path in sorted(output.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def good_output(tmp_path_factory, tiny_model_dir, nsmc_path) -> tuple[Path, Path]:
    """An input folder and the output of a good run over it."""
    root = tmp_path_factory.mktemp("bad-input")
    source, output = root / "in", root / "labels"
    source.mkdir()
    pq.write_table(pq.read_table(nsmc_path).slice(0, 100), source / "day-1.parquet")
    done = kobert_label(tiny_model_dir, source, output)
    assert done.returncode == 0, done.stderr[-2000:]
    return source, output


def missing_inside(folder: Path, name: str) -> Path:
    """`folder.name/name`, relative, where `folder` exists and holds no `name` (once taken for a hub id)."""
    folder.mkdir()
    return Path(folder.name) / name


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def unnamed_model(tiny_model_dir: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    settings = json.loads((folder / "config.json").read_text())
    settings.pop("id2label", None)
    settings.pop("label2id", None)
    (folder / "config.json").write_text(json.dumps(settings))
    return folder


# kind -> (how the command differs from the good run, the one line it must print)
KINDS = {
    "model folder missing, one slash": (
        lambda m, s, tmp: {"model": missing_inside(tmp / "models", "my-model"), "cwd": tmp},
        r"no model folder models/my-model \(models/ exists, but holds no my-model\)"),
    "model without label names": (
        lambda m, s, tmp: {"model": unnamed_model(m, tmp / "unnamed")},
        r"names no labels .*set id2label"),
    "planted pickle weights": (
        lambda m, s, tmp: {"model": planted_model(m, tmp / "planted", tmp / "code-ran")},
        r"pytorch_model\.bin.*(pickle|unpickl)"),
    "input file missing": (
        lambda m, s, tmp: {"source": s / "nowhere.parquet"},
        r"input not found: \S*nowhere\.parquet"),
    "a file without the text column": (
        lambda m, s, tmp: {"write": ("day-2.parquet", parquet_bytes(pa.table({"review_id": [9], "body": ["좋다"]})))},
        r"day-2\.parquet has no column 'text'"),
    "not a Parquet file": (
        lambda m, s, tmp: {"write": ("notes.parquet", b"review_id,text\n1,hello\n")},
        r"notes\.parquet is not a readable Parquet file"),
    "max length beyond the model": (
        lambda m, s, tmp: {"extra": ["--max-length", "9000"]},
        r"--max-length must be in 3\.\.512"),
    "onnx runtime on a PyTorch folder": (
        lambda m, s, tmp: {"extra": ["--runtime", "onnx"]},
        r"holds no model\.onnx: --runtime onnx needs a folder written by `kobert export"),
    "secret in a URI query": (
        lambda m, s, tmp: {"source": "s3://reviews/in/?X-Amz-Signature=SECRET-0123456789"},
        r"--input s3://reviews/in/\?<redacted>: a URI with a query or user info is not supported"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_input_is_one_line_exit_2_and_the_earlier_output_untouched(kind, good_output, tiny_model_dir, tmp_path):
    source, output = good_output
    before = snapshot(output)
    change, message = KINDS[kind]
    changed = change(tiny_model_dir, source, tmp_path)
    run_source = source
    if "write" in changed:  # a bad file beside the good one, in a folder of the test's own
        run_source = tmp_path / "in"
        shutil.copytree(source, run_source)
        name, data = changed["write"]
        (run_source / name).write_bytes(data)
    done = kobert_label(changed.get("model", tiny_model_dir), changed.get("source", run_source), output,
                        *changed.get("extra", []), cwd=changed.get("cwd"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("kobert label: error: ") and re.search(message, lines[0]), lines[0]
    assert "SECRET-0123456789" not in done.stdout + done.stderr
    assert not (tmp_path / "code-ran").exists()  # the planted pickle never ran
    assert snapshot(output) == before
