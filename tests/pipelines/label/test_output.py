"""Output folder: locks left by dead runs are taken over, live ones are respected; manifests round-trip."""

import json
import socket
import subprocess
import sys

import pytest

from pipelines.cli import UserError
from pipelines.label.manifest import Manifest
from pipelines.label.output import OutputFolder


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = {"run_id": "dead", "host": socket.gethostname(), "pid": int(dead.stdout), "since": 0}
    (tmp_path / "_LOCK").write_text(json.dumps(holder))
    folder = OutputFolder.of(str(tmp_path))
    folder.acquire_lock("mine")
    assert json.loads((tmp_path / "_LOCK").read_text())["run_id"] == "mine"
    folder.release_lock()
    assert not (tmp_path / "_LOCK").exists()


def test_lock_of_another_host_expires_after_a_day(tmp_path):
    import time

    holder = {"run_id": "far", "host": "elsewhere", "pid": 1, "since": time.time() - 3600}
    (tmp_path / "_LOCK").write_text(json.dumps(holder))
    with pytest.raises(UserError, match="held by run far"):
        OutputFolder.of(str(tmp_path)).acquire_lock("mine")
    (tmp_path / "_LOCK").write_text(json.dumps({**holder, "since": time.time() - 2 * 86400}))
    OutputFolder.of(str(tmp_path)).acquire_lock("mine")


def test_manifest_round_trip_and_totals():
    file = {"path": "/in/a.parquet", "size": 10, "modified": "1", "etag": None}
    run = {"run_id": "r1", "input_files": [file], "rows": {"read": 5, "labeled": 4, "rejected": 1}, "timings": {}}
    manifest = Manifest(output="/out", model={"labels": ["a", "b"]}, columns={"id": "id"}, runs=[run, {**run, "run_id": "r2"}])
    document = json.loads(json.dumps(manifest.to_json()))
    assert document["rows"] == {"read": 10, "labeled": 8, "rejected": 2} and document["run_id"] == "r2"
    assert Manifest.from_json(document).labeled_keys() == {("/in/a.parquet", 10, "1")}
    with pytest.raises(ValueError, match="unknown manifest format"):
        Manifest.from_json({**document, "format": "other"})
