"""The optional Delta Lake table: each committed run appended once, repaired after a crash, rewritten after
--overwrite, and the same rows as the Parquet output (in-process runs; the sink is independent of the engine)."""

from collections import Counter

import deltalake  # the delta extra; part of dev
import pyarrow.parquet as pq

from pipelines.label.pipeline import run_label
from tests.pipelines.label.helpers import config, output_tables


def table_rows(table) -> Counter:
    return Counter(deltalake.DeltaTable(str(table)).to_pyarrow_table()["review_id"].to_pylist())


def test_incremental_runs_append_once_each_and_match_the_parquet_output(tiny_model_dir, real_table, tmp_path):
    source, output, table = tmp_path / "in", tmp_path / "labels", tmp_path / "delta"
    source.mkdir()
    pq.write_table(real_table.slice(0, 300), source / "day-1.parquet")
    first = run_label(config(tiny_model_dir, source, output, incremental=True, delta_table=str(table)))
    pq.write_table(real_table.slice(300, 200), source / "day-2.parquet")
    second = run_label(config(tiny_model_dir, source, output, incremental=True, delta_table=str(table)))
    nothing = run_label(config(tiny_model_dir, source, output, incremental=True, delta_table=str(table)))
    assert first.delta.appended_runs == [first.run_id] and second.delta.appended_runs == [second.run_id]
    assert nothing.run_id is None and nothing.delta.appended_runs == [] and nothing.delta.version == 1
    labeled, _ = output_tables(output)
    assert table_rows(table) == Counter(labeled["review_id"].to_pylist())
    delta = deltalake.DeltaTable(str(table)).to_pyarrow_table()
    assert set(delta["run_id"].to_pylist()) == {first.run_id, second.run_id}
    assert {"label", "label_name", "score", "probabilities", "model_version", "labeled_at"} <= set(delta.column_names)


def test_a_crash_before_the_append_is_repaired_by_the_next_run(tiny_model_dir, real_table, tmp_path):
    source, output, table = tmp_path / "in", tmp_path / "labels", tmp_path / "delta"
    source.mkdir()
    pq.write_table(real_table.slice(0, 250), source / "day-1.parquet")
    first = run_label(config(tiny_model_dir, source, output, incremental=True))  # committed, never appended
    repaired = run_label(config(tiny_model_dir, source, output, incremental=True, delta_table=str(table)))
    assert repaired.run_id is None and repaired.delta.appended_runs == [first.run_id]
    assert sum(table_rows(table).values()) == output_tables(output)[0].num_rows


def test_overwrite_rewrites_the_table_with_the_new_run_only(tiny_model_dir, real_table, tmp_path):
    source, output, table = tmp_path / "in", tmp_path / "labels", tmp_path / "delta"
    source.mkdir()
    pq.write_table(real_table.slice(0, 200), source / "part.parquet")
    run_label(config(tiny_model_dir, source, output, delta_table=str(table)))
    second = run_label(config(tiny_model_dir, source, output, overwrite=True, delta_table=str(table)))
    assert second.delta.rewritten and second.delta.appended_runs == [second.run_id]
    delta = deltalake.DeltaTable(str(table)).to_pyarrow_table()
    assert delta.num_rows == 200 and set(delta["run_id"].to_pylist()) == {second.run_id}


def test_partition_column_partitions_the_table(tiny_model_dir, real_table, tmp_path):
    source, output, table = tmp_path / "in", tmp_path / "labels", tmp_path / "delta"
    source.mkdir()
    pq.write_table(real_table.slice(0, 200), source / "part.parquet")
    run_label(config(tiny_model_dir, source, output, partition_column="rating", delta_table=str(table)))
    dt = deltalake.DeltaTable(str(table))
    assert dt.metadata().partition_columns == ["rating"]
    ratings = Counter(real_table.slice(0, 200)["rating"].to_pylist())  # the column's own type, not strings
    assert Counter(dt.to_pyarrow_table()["rating"].to_pylist()) == ratings
