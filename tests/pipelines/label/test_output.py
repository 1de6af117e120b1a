"""Output folder: manifests round-trip (the lease has its own tests: test_lease.py)."""

import json

import pytest

from pipelines.label.manifest import Manifest


def test_manifest_round_trip_and_totals():
    file = {"path": "/in/a.parquet", "size": 10, "modified": "1", "etag": None}
    run = {"run_id": "r1", "input_files": [file], "rows": {"read": 5, "labeled": 4, "rejected": 1}, "timings": {},
           "files": {"labeled": ["labels/run_id=r1/a.parquet"], "rejected": [], "reports": []}}
    manifest = Manifest(output="/out", model={"labels": ["a", "b"]}, columns={"id": "id"}, runs=[run, {**run, "run_id": "r2"}])
    document = json.loads(json.dumps(manifest.to_json()))
    assert document["rows"] == {"read": 10, "labeled": 8, "rejected": 2} and document["run_id"] == "r2"
    assert document["files"] == {"labeled": ["labels/run_id=r1/a.parquet"] * 2, "rejected": []}
    assert {f.key for f in Manifest.from_json(document).labeled_files()} == {("/in/a.parquet", 10, "1")}
    with pytest.raises(ValueError, match="unknown manifest format"):
        Manifest.from_json({**document, "format": "other"})
