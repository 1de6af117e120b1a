"""A whole run in-process (`--engine local`: the same stages without Ray): exactly-once output, re-runs
over interrupted output, incremental runs, and refusals that protect existing data."""

import json
import os
import shutil
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest

from pipelines.cli import UserError
from pipelines.label.pipeline import run_label
from tests.pipelines.label.helpers import assert_exactly_once, auto_cpu_path, config, files_of, output_tables


def test_messy_input_is_labeled_exactly_once(tiny_model_dir, messy_input, tmp_path):
    output = tmp_path / "labels"
    result = run_label(config(tiny_model_dir, messy_input, output, max_length=32, rows_per_file=500))
    labeled, rejected = assert_exactly_once(files_of(messy_input), output)
    reasons = sorted(rejected["reason"].to_pylist())
    assert reasons.count("null_text") == 2 and reasons.count("empty_text") >= 3 and reasons.count("null_id") == 1
    assert labeled["truncated"].to_pylist().count(True) >= 2  # the 20k-character texts: labeled, flagged
    assert set(labeled["label_name"].to_pylist()) <= {"부정", "긍정"}
    assert labeled.schema.field("rating").type == pq.read_schema(files_of(messy_input)[0]).field("rating").type
    manifest = json.loads((output / "_SUCCESS").read_text())
    assert manifest["rows"] == {"read": 1219, "labeled": labeled.num_rows, "rejected": rejected.num_rows}
    assert manifest["runs"][0]["actors"] == [  # and the path it ran, chosen for this CPU (issue 14)
        {"node_id": "local", "actor_id": "local", "cpus": None, "threads": 1, "rows": labeled.num_rows,
         "path": auto_cpu_path()}]
    assert [f["path"] for f in manifest["input_files"]] == [str(p) for p in files_of(messy_input)]
    assert manifest["model"]["labels"] == ["부정", "긍정"] and result.run_id == manifest["run_id"]
    report = output / manifest["runs"][0]["report"]
    stats = json.loads((report.parent / "label_stats.json").read_text())
    assert stats["label_counts"] == dict(Counter(labeled["label_name"].to_pylist()))
    assert {name: sum(bins) for name, bins in stats["score_histograms"].items()} == stats["label_counts"]
    assert stats["reject_reasons"] == dict(Counter(rejected["reason"].to_pylist()))
    assert (report.parent / "label_distribution.png").stat().st_size > 10_000 and "![label distribution]" in report.read_text()


def test_rerun_over_interrupted_output_replaces_it(tiny_model_dir, messy_input, tmp_path):
    output = tmp_path / "labels"
    run_label(config(tiny_model_dir, messy_input, output))
    # simulate a run killed after moving its files: a stray partition and staging, and no _SUCCESS (nor a Delta
    # log, which follows _SUCCESS; a Delta log without _SUCCESS is refused: test_labels_delta.py)
    (output / "_SUCCESS").unlink()
    shutil.rmtree(output / "labels" / "_delta_log")
    stray = next((output / "labels").glob("run_id=*"))
    shutil.copytree(stray, output / "labels" / "run_id=crashed")
    (output / "_staging" / "x" / "labeled").mkdir(parents=True)
    shutil.copy(next(stray.glob("*.parquet")), output / "_staging" / "x" / "labeled" / "p.parquet")
    run_label(config(tiny_model_dir, messy_input, output))
    assert_exactly_once(files_of(messy_input), output)
    assert not (output / "_staging").exists() and len(list((output / "labels").glob("run_id=*"))) == 1


def test_complete_output_is_kept_unless_overwrite(tiny_model_dir, messy_input, tmp_path):
    output = tmp_path / "labels"
    first = run_label(config(tiny_model_dir, messy_input, output))
    with pytest.raises(UserError, match="already complete"):
        run_label(config(tiny_model_dir, messy_input, output))
    second = run_label(config(tiny_model_dir, messy_input, output, overwrite=True))
    assert_exactly_once(files_of(messy_input), output)
    assert [p.name for p in (output / "labels").glob("run_id=*")] == [f"run_id={second.run_id}"] != [f"run_id={first.run_id}"]
    assert [p.name for p in (output / "reports").iterdir()] == [f"run_id={second.run_id}"]


def test_incremental_labels_each_file_once(tiny_model_dir, real_table, tmp_path):
    source, output = tmp_path / "in", tmp_path / "labels"
    source.mkdir()
    pq.write_table(real_table.slice(0, 300), source / "day-1.parquet")
    first = run_label(config(tiny_model_dir, source, output, incremental=True))
    pq.write_table(real_table.slice(300, 200), source / "day-2.parquet")
    second = run_label(config(tiny_model_dir, source, output, incremental=True))
    third = run_label(config(tiny_model_dir, source, output, incremental=True))
    assert (first.stats.rows, second.stats.rows, third.run_id) == (300, 200, None)
    assert_exactly_once(files_of(source), output)
    manifest = json.loads((output / "_SUCCESS").read_text())
    assert [len(run["input_files"]) for run in manifest["runs"]] == [1, 1]
    assert sorted(p.name for p in (output / "labels").glob("run_id=*")) == sorted(f"run_id={r.run_id}" for r in (first, second))


def test_incremental_knows_a_file_by_its_content_not_its_name_or_mtime(tiny_model_dir, real_table, tmp_path):
    """Before: (path, size, mtime) alone, so a `cp` or a `touch` labeled the same rows a second time."""
    source, output = tmp_path / "in", tmp_path / "labels"
    source.mkdir()
    pq.write_table(real_table.slice(0, 200), source / "day-1.parquet")
    first = run_label(config(tiny_model_dir, source, output, incremental=True))
    shutil.copy(source / "day-1.parquet", source / "day-1-copy.parquet")  # a copy under another name
    os.utime(source / "day-1.parquet", (1, 1))  # a touch
    again = run_label(config(tiny_model_dir, source, output, incremental=True))
    assert again.run_id is None and first.stats.rows == 200
    pq.write_table(real_table.slice(200, 100), source / "day-2.parquet")  # new content is labeled
    second = run_label(config(tiny_model_dir, source, output, incremental=True))
    assert second.stats.rows == 100
    manifest = json.loads((output / "_SUCCESS").read_text())
    assert all(f["digest"].startswith("sha256:") for f in manifest["input_files"])
    labeled, _ = output_tables(output)
    assert sorted(labeled["review_id"].to_pylist()) == sorted(real_table.slice(0, 300)["review_id"].to_pylist())


def test_a_partition_column_of_5000_values_labels_into_one_file_per_value(tiny_model_dir, nsmc_path, tmp_path):
    """Before: pyarrow's writer stopped the run at 1,024 values per batch (`max_partitions`)."""
    import pyarrow as pa

    reviews = pq.read_table(nsmc_path, columns=["review_id", "text"]).slice(0, 10_000)
    codes = pa.array([f"{i % 5000:05d}" for i in range(reviews.num_rows)])  # zero-padded: must stay strings
    pq.write_table(reviews.append_column("code", codes), tmp_path / "codes.parquet")
    output = tmp_path / "labels"
    run_label(config(tiny_model_dir, tmp_path / "codes.parquet", output, pass_through=["code"],
                     partition_column="code", max_length=32))
    labeled, _ = assert_exactly_once([tmp_path / "codes.parquet"], output)
    folders = [path.parent.name for path in (output / "labels").rglob("*.parquet")]
    assert len(folders) == len(set(folders)) == 5000  # one file per value: each value's rows together
    assert labeled.schema.field("code").type == pa.string() and "00007" in set(labeled["code"].to_pylist())


def test_output_with_foreign_files_is_refused(tiny_model_dir, messy_input, tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="did not write .*notes.txt"):
        run_label(config(tiny_model_dir, messy_input, tmp_path / "labels"))
    assert (tmp_path / "labels" / "notes.txt").exists() and not list((tmp_path / "labels").glob("_LOCK*"))


def test_live_lock_is_respected(tiny_model_dir, messy_input, tmp_path):
    import os
    import socket

    output = tmp_path / "labels"
    output.mkdir()
    from pipelines.label.lease import process_space

    holder = {"run_id": "other", "host": socket.gethostname(), "pid": os.getppid(), "since": 0,
              "process_space": process_space(), "expires": time.time() + 600}
    (output / "_LOCK.00000001").write_text(json.dumps(holder))
    with pytest.raises(UserError, match="held by run other"):
        run_label(config(tiny_model_dir, messy_input, output))


@pytest.mark.parametrize("labels", [None, {"0": "LABEL_0", "1": "LABEL_1"}])
def test_a_model_without_label_names_is_refused_before_any_row(tiny_model_dir, messy_input, tmp_path, labels):
    """No id2label (or transformers' placeholders) would put LABEL_1 into a warehouse as if it meant something."""
    model = tmp_path / "unnamed"
    shutil.copytree(tiny_model_dir, model)
    settings = json.loads((model / "config.json").read_text())
    settings.pop("label2id", None)
    settings.pop("id2label", None)
    if labels:
        settings["id2label"] = labels
    (model / "config.json").write_text(json.dumps(settings))
    with pytest.raises(UserError, match="names no labels .*set id2label"):
        run_label(config(model, messy_input, tmp_path / "labels"))
    assert not (tmp_path / "labels" / "_SUCCESS").exists()


def test_the_default_model_version_is_the_weights_digest_and_follows_a_retrained_model(tmp_path, monkeypatch):
    """`<folder>-<12 hex of sha256 over config.json and weights>` as rows have always carried it; kept between
    runs while the files stay as they are, and new once the weights are written again (the same size)."""
    import hashlib
    from pathlib import Path

    from kobert_ops import file_digest
    from pipelines.label.pipeline import default_version

    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(file_digest, "SETTLED_S", -5.0)  # the files count as settled
    model = tmp_path / "nsmc-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"a" * 100)
    expected = hashlib.sha256(b"{}" + b"a" * 100).hexdigest()[:12]
    assert default_version(Path(model)) == f"nsmc-model-{expected}"
    monkeypatch.setattr(file_digest, "_kept", {})  # the next run's process
    assert default_version(Path(model)) == f"nsmc-model-{expected}"
    (model / "model.safetensors").write_bytes(b"b" * 100)
    assert default_version(Path(model)) == f"nsmc-model-{hashlib.sha256(b'{}' + b'b' * 100).hexdigest()[:12]}"
