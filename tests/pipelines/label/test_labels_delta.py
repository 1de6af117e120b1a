"""`OUTPUT/labels/` as a Delta table of the files each run wrote: one commit per run, seen whole by delta-rs,
Polars and DuckDB (over delta-rs's Arrow dataset: DuckDB's `delta` extension cannot be downloaded here), a
repeated commit a no-op, a run killed between `_SUCCESS` and its Delta commit repaired by the next run, and
no checkpoint `.parquet` in `_delta_log/` for a glob to mistake for data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import deltalake
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.errors import UserError
from pipelines.label.delta_labels import (APP_ID, CONFIGURATION, RUN_PROPERTY, partition_values, storage_options,
                                         sync_labels)
from pipelines.label.manifest import Manifest
from pipelines.label.output import OutputFolder
from pipelines.label.pipeline import run_label
from tests.pipelines.label.helpers import KOBERT, as_hive, config, day, labelable

# `kobert` with a pause, for the test to SIGKILL the driver there: PAUSE=after_success right after `_SUCCESS`
# is written (before the Delta commit), PAUSE=before_delta_commit when the Delta commit is about to start.
# Nothing else differs from the console script.
PAUSED = """
import os, pathlib, sys, time
import pipelines.label.delta_labels as delta_labels
import pipelines.label.output as output
def pausing(step):
    def paused(*args):
        if os.environ["PAUSE"] == "after_success":
            step(*args)
        pathlib.Path(os.environ["PAUSED"]).touch()
        time.sleep(120)
    return paused
if os.environ["PAUSE"] == "after_success":
    output.write_manifest = pausing(output.write_manifest)
else:
    delta_labels.sync_labels = pausing(delta_labels.sync_labels)
from pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


def genre_config(model, source, output, **overrides):
    return config(model, source, output, pass_through=["movie_id"], partition_column="genre", **overrides)


def delta_readers(output: Path) -> dict[str, Counter]:
    """(review_id, genre) of every row each Delta reader finds in OUTPUT/labels."""
    uri = str(output / "labels")
    table = deltalake.DeltaTable(uri)
    arrow = table.to_pyarrow_table(columns=["review_id", "genre"])
    con = duckdb.connect()
    con.register("labels", table.to_pyarrow_dataset())
    return {
        "deltalake": Counter(zip(arrow["review_id"].to_pylist(), arrow["genre"].to_pylist())),
        "polars": Counter(pl.scan_delta(uri).select("review_id", "genre").collect().rows()),
        "duckdb": Counter(con.sql("SELECT review_id, genre FROM labels").fetchall()),
    }


def assert_delta_readers_see(output: Path, expected: Counter) -> None:
    for name, seen in delta_readers(output).items():
        assert seen == expected, f"{name}: missing {expected - seen}, extra {seen - expected}"


def history(output: Path) -> list[dict]:
    """The table's commits, oldest first."""
    return deltalake.DeltaTable(str(output / "labels")).history()[::-1]


def manifest_of(output: Path) -> Manifest:
    return Manifest.from_json(json.loads((output / "_SUCCESS").read_text()))


def log_files(output: Path) -> list[str]:
    return sorted(path.name for path in (output / "labels" / "_delta_log").iterdir())


def test_each_run_is_one_commit_of_its_own_files_that_every_delta_reader_sees_whole(tiny_model_dir, real_table,
                                                                                     tmp_path):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    first = day(real_table, 0, 200, messy=True)
    pq.write_table(first, source / "day-1.parquet")
    one = run_label(genre_config(tiny_model_dir, source, output, incremental=True))
    assert_delta_readers_see(output, as_hive(labelable(first)))
    table = deltalake.DeltaTable(str(output / "labels"))
    assert table.version() == 0 and table.transaction_version(APP_ID) == 1
    assert table.metadata().partition_columns == ["run_id", "genre"]
    # the run's own files, registered where they are (no copy), with their row counts
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    listed = manifest_of(output).files("labeled")
    assert sorted(f"labels/{unquote(row['path'])}" for row in actions) == sorted(listed)  # (the log %-encodes)
    assert sum(row["num_records"] for row in actions) == sum(labelable(first).values())
    assert sorted(p.name for p in (output / "labels").rglob("*.parquet")) == sorted(Path(p).name for p in listed)

    second = day(real_table, 300, 150)
    pq.write_table(second, source / "day-2.parquet")
    two = run_label(genre_config(tiny_model_dir, source, output, incremental=True))
    assert two.labels_table.committed and two.labels_table.version == 1 and two.labels_table.removed == 0
    assert_delta_readers_see(output, as_hive(labelable(first, second)))

    # a repeated commit (the same manifest again, or a run with nothing new) is a no-op: no version, no row
    again = sync_labels(OutputFolder.of(str(output)), manifest_of(output))
    nothing = run_label(genre_config(tiny_model_dir, source, output, incremental=True))
    assert not again.committed and nothing.run_id is None and not nothing.labels_table.committed
    assert [(c["version"], c[RUN_PROPERTY]) for c in history(output)] == [(0, one.run_id), (1, two.run_id)]
    assert_delta_readers_see(output, as_hive(labelable(first, second)))

    # --overwrite: one commit that removes the old runs' files and adds the new run's
    replacement = tmp_path / "replacement"
    replacement.mkdir()
    third = day(real_table, 600, 120)
    pq.write_table(third, replacement / "day-3.parquet")
    three = run_label(genre_config(tiny_model_dir, replacement, output, overwrite=True))
    assert three.labels_table.version == 2 and three.labels_table.removed > 0
    assert deltalake.DeltaTable(str(output / "labels")).transaction_version(APP_ID) == 3
    assert_delta_readers_see(output, as_hive(labelable(third)))
    assert sorted(p.name for p in (output / "labels").iterdir()) == ["_delta_log", f"run_id={three.run_id}"]
    assert [c[RUN_PROPERTY] for c in history(output)] == [one.run_id, two.run_id, three.run_id]
    assert all(name.endswith(".json") for name in log_files(output)), log_files(output)


def kill_paused(model: Path, source: Path, output: Path, tmp_path: Path, pause: str, *flags: str) -> None:
    """Run `kobert label` with the paused script; SIGKILL it once it reaches the pause."""
    script, paused = tmp_path / "paused.py", tmp_path / "paused"
    script.write_text(PAUSED)
    paused.unlink(missing_ok=True)
    environment = {**os.environ, "PAUSE": pause, "PAUSED": str(paused), "TOKENIZERS_PARALLELISM": "false"}
    environment.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(
        [sys.executable, str(script), "label", "--model", str(model), "--input", str(source), "--output",
         str(output), "--pass-through", "movie_id", "--partition-column", "genre", "--engine", "local",
         "--threads-per-actor", "1", "--no-progress", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, start_new_session=True)
    deadline = time.time() + 240
    while not paused.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, f"the run never reached the pause {pause}"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def test_an_overwrite_killed_between_success_and_its_delta_commit_is_repaired_by_the_next_run(
        tiny_model_dir, real_table, tmp_path):
    source, replacement, output = tmp_path / "in", tmp_path / "replacement", tmp_path / "out"
    source.mkdir()
    replacement.mkdir()
    first, second = day(real_table, 0, 200), day(real_table, 400, 150)
    pq.write_table(first, source / "day-1.parquet")
    pq.write_table(second, replacement / "day-2.parquet")
    one = run_label(genre_config(tiny_model_dir, source, output))
    old_files = sorted((output / "labels" / f"run_id={one.run_id}").rglob("*.parquet"))

    kill_paused(tiny_model_dir, replacement, output, tmp_path, "after_success", "--overwrite")
    killed = manifest_of(output)
    assert killed.run_ids() != [one.run_id]  # the manifest has the new run ...
    assert_delta_readers_see(output, as_hive(labelable(first)))  # ... the Delta table, whole, the old one

    # the next run commits the Delta table before it deletes anything: killed just before that commit, it
    # has deleted none of the files the table references
    kill_paused(tiny_model_dir, replacement, output, tmp_path, "before_delta_commit", "--incremental")
    assert sorted((output / "labels" / f"run_id={one.run_id}").rglob("*.parquet")) == old_files
    assert_delta_readers_see(output, as_hive(labelable(first)))

    repaired = run_label(genre_config(tiny_model_dir, replacement, output, incremental=True))
    assert repaired.run_id is None  # nothing new to label: the repair is the Delta commit alone
    assert_delta_readers_see(output, as_hive(labelable(second)))
    assert [c[RUN_PROPERTY] for c in history(output)] == [one.run_id, killed.run_ids()[-1]]
    assert deltalake.DeltaTable(str(output / "labels")).transaction_version(APP_ID) == 2
    assert not (output / "labels" / f"run_id={one.run_id}").exists()  # deleted once no commit references it


def test_no_checkpoint_parquet_lands_in_the_log_where_a_glob_would_read_it(tiny_model_dir, real_table, tmp_path):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    first = day(real_table, 0, 150)
    pq.write_table(first, source / "day-1.parquet")
    run_label(genre_config(tiny_model_dir, source, output))
    folder, manifest = OutputFolder.of(str(output)), manifest_of(output)
    for sequence in range(2, 103):  # 101 more commits: past delta-rs's default checkpoint interval of 100
        manifest.runs[-1]["sequence"] = sequence
        assert sync_labels(folder, manifest).committed
    assert deltalake.DeltaTable(str(output / "labels")).version() == 101
    assert all(name.endswith(".json") for name in log_files(output)), log_files(output)
    glob = duckdb.sql(f"SELECT count(*) FROM read_parquet('{output}/labels/**/*.parquet')").fetchall()[0][0]
    assert glob == sum(labelable(first).values())

    # the same commits on a table with delta-rs's default configuration do write a checkpoint .parquet
    plain = tmp_path / "plain"
    schema = pa.schema([("review_id", pa.int64())])
    deltalake.write_deltalake(str(plain), schema.empty_table())
    for version in range(1, 101):
        deltalake.DeltaTable(str(plain)).create_write_transaction([], "append", schema)
    assert any(path.name.endswith(".checkpoint.parquet") for path in (plain / "_delta_log").iterdir())
    assert deltalake.DeltaTable(str(output / "labels")).metadata().configuration == CONFIGURATION


def test_an_output_labeled_without_delta_becomes_a_delta_table_and_stays_one(tiny_model_dir, real_table, tmp_path):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    days = [day(real_table, 0, 120), day(real_table, 200, 100), day(real_table, 400, 80)]
    pq.write_table(days[0], source / "day-1.parquet")
    one = run_label(genre_config(tiny_model_dir, source, output, incremental=True, table_format="none"))
    assert not (output / "labels" / "_delta_log").exists()  # as outputs written before the Delta table

    pq.write_table(days[1], source / "day-2.parquet")
    two = run_label(genre_config(tiny_model_dir, source, output, incremental=True))
    # the earlier run's files are registered before this run starts, then this run's: a commit each
    assert [c[RUN_PROPERTY] for c in history(output)] == [one.run_id, two.run_id]
    assert_delta_readers_see(output, as_hive(labelable(*days[:2])))

    pq.write_table(days[2], source / "day-3.parquet")  # --table-format none cannot leave the table behind
    run_label(genre_config(tiny_model_dir, source, output, incremental=True, table_format="none"))
    assert deltalake.DeltaTable(str(output / "labels")).transaction_version(APP_ID) == 3
    assert_delta_readers_see(output, as_hive(labelable(*days)))


def test_an_overwrite_with_other_columns_replaces_the_table_in_one_commit(tiny_model_dir, real_table, tmp_path):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    pq.write_table(day(real_table, 0, 150), source / "day-1.parquet")
    run_label(genre_config(tiny_model_dir, source, output))
    # the CLI in its own process: delta-rs 1.6.6 aborted a process at exit that replaced a table's metadata
    # and then read it (seen 5 times in 12), which this test process does
    result = subprocess.run([*KOBERT, "label", "--model", str(tiny_model_dir), "--input", str(source), "--output",
                             str(output), "--pass-through", "movie_id,rating", "--engine", "local",
                             "--threads-per-actor", "1", "--no-progress", "--overwrite"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^  delta       \S+/labels version 1: run 2 committed", result.stdout, re.M), result.stdout
    table = deltalake.DeltaTable(str(output / "labels"))
    assert table.version() == 1 and table.metadata().partition_columns == ["run_id"]
    rows = table.to_pyarrow_table()
    assert "genre" not in rows.column_names and rows.num_rows == sum(labelable(day(real_table, 0, 150)).values())
    assert rows.schema.field("rating").type == pq.read_schema(source / "day-1.parquet").field("rating").type
    assert set(rows["run_id"].to_pylist()) == {json.loads((output / "_SUCCESS").read_text())["run_id"]}


def test_refusals_come_before_any_labeling_and_delete_nothing(tiny_model_dir, real_table, tmp_path):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    with pytest.raises(ValueError, match="--delta-table names OUTPUT/labels"):
        genre_config(tiny_model_dir, source, output, delta_table=str(output / "labels"))

    times = real_table.slice(0, 50).append_column("seen_at", pa.array([1_000] * 50, pa.time64("us")))
    pq.write_table(times, source / "times.parquet")
    with pytest.raises(UserError, match="column 'seen_at' \\(time64\\[us\\]\\).*--table-format none"):
        run_label(config(tiny_model_dir, source, output, pass_through=["movie_id", "seen_at"]))
    assert not (output / "labels").exists() and not (output / "_SUCCESS").exists()

    (source / "times.parquet").unlink()
    pq.write_table(day(real_table, 0, 80), source / "day-1.parquet")
    run_label(genre_config(tiny_model_dir, source, output))
    (output / "_SUCCESS").unlink()  # a Delta table without its manifest: its files are not debris
    before = sorted(p.relative_to(output) for p in (output / "labels").rglob("*"))
    with pytest.raises(UserError, match="is a Delta table but .* has no _SUCCESS"):
        run_label(genre_config(tiny_model_dir, source, output))
    assert sorted(p.relative_to(output) for p in (output / "labels").rglob("*")) == before


def test_partition_values_come_from_the_hive_folders_as_written():
    assert partition_values("run_id=r1/genre=드라마/part-a-0.parquet") == {"run_id": "r1", "genre": "드라마"}
    assert partition_values("run_id=r1/genre=SF%2F판타지%3D1%25/part-a-0.parquet") == {
        "run_id": "r1", "genre": "SF/판타지=1%"}
    assert partition_values("run_id=r1/genre=__HIVE_DEFAULT_PARTITION__/p.parquet") == {"run_id": "r1", "genre": None}
    assert partition_values("run_id=r1/part-a-0.parquet") == {"run_id": "r1"}


def test_deltalake_may_use_the_plain_http_endpoint_the_user_chose(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    assert storage_options() == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.example.com")
    assert storage_options() == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert storage_options() == {"AWS_ALLOW_HTTP": "true"}
