"""The readers a warehouse points at `kobert label` output, run as docs/labeling.md writes them.

Each "Reading the output" block of the docs is executed here, unchanged but for `OUTPUT`, against real
outputs of the `kobert` command: DuckDB, Polars, pyarrow and pyspark over the manifest's file list, and
delta-rs, Polars and DuckDB over the Delta table `OUTPUT/labels`, must each see exactly the committed labeled
rows (as (id, partition value) pairs: Korean, empty and null values included; Delta readers take partition
values from the Delta log, where "" is null) after a run, an incremental run, an `--overwrite`, a driver
SIGKILLed during its commit, and two runs started at once. The Spark-on-Delta block needs jars these
machines cannot download: it is only compiled.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from tests.pipelines.label.helpers import KOBERT, as_hive, day, labelable

DOCS = Path(__file__).resolve().parents[3] / "docs" / "labeling.md"
# The `kobert` command with its commit slowed after the first file it moves into place: a driver caught
# mid-commit, for the test to SIGKILL. Nothing else differs from the console script.
PAUSED_COMMIT = """
import os, pathlib, sys, time
import pipelines.label.output as output
move = output.OutputFolder._move
def move_then_wait(self, source, target):
    move(self, source, target)
    pathlib.Path(os.environ["MOVED"]).touch()
    time.sleep(120)
output.OutputFolder._move = move_then_wait
from pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


def reader_blocks() -> dict[str, str]:
    """The docs' reader blocks, by name (`# reader: <name>` on their first line)."""
    blocks = re.findall(r"```python\n# reader: (\w+)\n(.*?)```", DOCS.read_text(), re.S)
    assert {name for name, _ in blocks} == {"duckdb", "polars", "pyarrow", "spark", "delta_pyarrow",
                                            "delta_polars", "delta_duckdb"}, blocks
    return dict(blocks)


def untested_blocks() -> dict[str, str]:
    """The docs' reader blocks that need what these machines cannot download (`# reader, untested here …: <name>`)."""
    return dict(re.findall(r"```python\n# reader, untested here[^:]*: (\w+)\n(.*?)```", DOCS.read_text(), re.S))


@pytest.fixture(scope="module")
def spark():
    session = (SparkSession.builder.master("local[1]").appName("kobert-readers")
               .config("spark.ui.enabled", "false").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1").config("spark.sql.shuffle.partitions", "1").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def pairs(name: str, labels) -> Counter:
    """(review_id, genre) of every row a reader's `labels` holds."""
    name = name.removeprefix("delta_")
    if name == "duckdb":
        rows = labels.project("review_id, genre").fetchall()
    elif name == "polars":
        rows = labels.select(["review_id", "genre"]).rows()
    elif name == "pyarrow":
        rows = [(row["review_id"], row["genre"]) for row in labels.select(["review_id", "genre"]).to_pylist()]
    else:
        rows = [(row["review_id"], row["genre"]) for row in labels.select("review_id", "genre").collect()]
    return Counter(map(tuple, rows))


def read_with_every_reader(output: Path, spark) -> dict[str, Counter]:
    seen = {}
    for name, code in reader_blocks().items():
        code = code.replace('OUTPUT = "artifacts/labels"', f"OUTPUT = {str(output)!r}")
        scope = {"spark": spark}
        exec(compile(code, f"docs/labeling.md ({name})", "exec"), scope)
        seen[name] = pairs(name, scope["labels"])
    return seen


def label(model: Path, source: Path, output: Path, *flags: str, command=None, env=None, wait=True):
    arguments = ["label", "--model", str(model), "--input", str(source), "--output", str(output),
                 "--pass-through", "movie_id,genre", "--partition-column", "genre", "--engine", "local",
                 "--threads-per-actor", "1", "--no-progress", *flags]
    environment = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    environment.pop("RAY_ADDRESS", None)
    process = subprocess.Popen([*(command or KOBERT), *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment, start_new_session=True)
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stdout[-2000:] + stderr[-3000:]
    return process


def assert_readers_see(output: Path, spark, expected: Counter) -> None:
    """Every reader block sees `expected`; the Delta readers with "" as null (a Delta partition value)."""
    for name, seen in read_with_every_reader(output, spark).items():
        wanted = as_hive(expected) if name.startswith("delta_") else expected
        assert seen == wanted, f"{name}: missing {wanted - seen}, extra {seen - wanted}"


def kill_during_commit(model, source, output, tmp_path, *flags) -> None:
    """Start the paused-commit command, SIGKILL its process group once it has moved a file into place."""
    script, moved = tmp_path / "paused_commit.py", tmp_path / "moved"
    script.write_text(PAUSED_COMMIT)
    moved.unlink(missing_ok=True)
    process = label(model, source, output, *flags, command=[sys.executable, str(script)],
                    env={"MOVED": str(moved)}, wait=False)
    deadline = time.time() + 240
    while not moved.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "the commit never started"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def glob_rows(output: Path) -> int:
    """What a plain glob over the labels folder sees (not atomic: for contrast)."""
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{output}/labels/**/*.parquet')").fetchall()[0][0]


def test_every_reader_sees_the_committed_rows_after_a_run_an_incremental_run_and_an_overwrite(
        tiny_model_dir, real_table, tmp_path, spark):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    first = day(real_table, 0, 300, messy=True)
    pq.write_table(first, source / "day-1.parquet")
    label(tiny_model_dir, source, output, "--incremental")
    assert_readers_see(output, spark, labelable(first))

    second = day(real_table, 300, 200)
    pq.write_table(second, source / "day-2.parquet")
    label(tiny_model_dir, source, output, "--incremental")
    assert_readers_see(output, spark, labelable(first, second))

    # Hive partition discovery over the folder: Korean and escaped values read back equal, "" and null as null;
    # DuckDB's hive_partitioning reads the same (and neither reads the Delta log beside the run folders)
    folder = spark.read.parquet(f"{output}/labels").select("review_id", "genre").collect()
    hive = as_hive(labelable(first, second))
    assert Counter((row["review_id"], row["genre"]) for row in folder) == hive
    duck = duckdb.sql(f"SELECT review_id, genre FROM read_parquet('{output}/labels/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()
    assert Counter(duck) == hive

    replacement = tmp_path / "replacement"
    replacement.mkdir()
    third = day(real_table, 600, 150)
    pq.write_table(third, replacement / "day-3.parquet")
    label(tiny_model_dir, replacement, output, "--overwrite")
    assert_readers_see(output, spark, labelable(third))


def test_every_reader_sees_whole_runs_when_a_driver_is_killed_during_its_commit(
        tiny_model_dir, real_table, tmp_path, spark):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    first, second = day(real_table, 0, 300, messy=True), day(real_table, 300, 300)
    pq.write_table(first, source / "day-1.parquet")
    label(tiny_model_dir, source, output)
    pq.write_table(second, source / "day-2.parquet")

    kill_during_commit(tiny_model_dir, source, output, tmp_path, "--incremental")
    assert glob_rows(output) > sum(labelable(first).values())  # part of the killed run is on disk ...
    assert_readers_see(output, spark, labelable(first))  # ... and no reader of the manifest sees it

    kill_during_commit(tiny_model_dir, source, output, tmp_path, "--overwrite")
    assert_readers_see(output, spark, labelable(first))  # the previous table stays whole until a commit

    label(tiny_model_dir, source, output, "--incremental")  # the same command again: complete, exactly once
    assert_readers_see(output, spark, labelable(first, second))
    assert glob_rows(output) == sum(labelable(first, second).values())  # the debris is gone


def test_every_reader_sees_each_row_once_after_two_runs_started_at_once(tiny_model_dir, real_table, tmp_path, spark):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    first, second = day(real_table, 0, 300, messy=True), day(real_table, 300, 200)
    pq.write_table(first, source / "day-1.parquet")
    pq.write_table(second, source / "day-2.parquet")
    runs = [label(tiny_model_dir, source, output, "--incremental", wait=False) for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    assert sorted(code for code, _, _ in results) in ([0, 0], [0, 2]), results
    assert_readers_see(output, spark, labelable(first, second))


def test_the_untested_reader_blocks_are_valid_python():
    blocks = untested_blocks()
    assert set(blocks) == {"delta_spark"}, blocks
    for name, code in blocks.items():
        compile(code, f"docs/labeling.md ({name})", "exec")
