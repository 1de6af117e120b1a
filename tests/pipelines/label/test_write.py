"""Write stage: the documented output schema, Hive partitions, and a summary that counts every row."""

import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import fsspec
import pytest

from pipelines.label.write import hive_segment, write_batch

LABELED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def predicted_batch():
    return pa.table({
        "review_id": pa.array([1, 2, 3, 4], pa.int64()),
        "text": ["좋다", None, "별로", "최고"],
        "movie_id": pa.array([10, 10, 20, 20], pa.int64()),
        "reason": [None, "null_text", None, None],
        "truncated": [False, False, True, False],
        "label": pa.array([1, -1, 0, 1], pa.int64()),
        "label_name": ["긍정", None, "부정", "긍정"],
        "score": pa.array([0.9, float("nan"), 0.6, 0.8], pa.float32()),
        "probabilities": pa.FixedSizeListArray.from_arrays(
            pa.array([0.1, 0.9, None, None, 0.6, 0.4, 0.2, 0.8], pa.float32()), 2),
        "labeled_by": pa.array(["actor-a", "actor-a", "actor-b", "actor-a"]).dictionary_encode(),
    })


def write(tmp_path, **overrides):
    kwargs = dict(fs=fsspec.filesystem("file"), staging=str(tmp_path), id_column="review_id",
                  pass_through=["movie_id"], partition_column=None, model_version="v1", labeled_at=LABELED_AT,
                  rows_per_file=1000, run_id="r1")
    batch = overrides.pop("batch", None) or predicted_batch()
    kwargs.update(overrides)
    return write_batch(batch, **kwargs).to_pylist()[0]


def test_labeled_and_rejected_files_follow_the_contract(tmp_path):
    summary = write(tmp_path)
    assert (summary["rows_labeled"], summary["rows_rejected"], summary["rows_truncated"]) == (3, 1, 1)
    assert json.loads(summary["label_counts"]) == {"긍정": 2, "부정": 1}
    assert json.loads(summary["actor_rows"]) == {"actor-a": 2, "actor-b": 1}  # the rejected row was not labeled
    labeled = pq.read_table(tmp_path / "labeled" / summary["labeled_files"][0])
    assert labeled.schema.names == ["review_id", "movie_id", "label", "label_name", "score", "probabilities",
                                    "truncated", "model_version", "labeled_at", "run_id"]
    assert labeled["run_id"].to_pylist() == ["r1"] * 3
    assert labeled.schema.field("probabilities").type == pa.list_(pa.float32())
    assert labeled.schema.field("labeled_at").type == pa.timestamp("us", tz="UTC")
    assert labeled["review_id"].to_pylist() == [1, 3, 4]
    assert labeled["model_version"].to_pylist() == ["v1"] * 3
    rejected = pq.read_table(tmp_path / "rejected" / summary["rejected_files"][0])
    assert rejected.to_pylist() == [{"review_id": 2, "movie_id": 10, "reason": "null_text"}]


def test_partition_column_becomes_hive_folders_and_stays_in_the_files_with_its_type(tmp_path):
    summary = write(tmp_path, partition_column="movie_id")
    assert sorted(f.split("/")[0] for f in summary["labeled_files"]) == ["movie_id=10", "movie_id=20"]
    files = [pq.read_table(tmp_path / "labeled" / f) for f in summary["labeled_files"]]
    assert all(table.schema.names[-1] == "movie_id" and table.schema.field("movie_id").type == pa.int64()
               for table in files)
    assert sorted(pa.concat_tables(files)["movie_id"].to_pylist()) == [10, 20, 20]


def test_partition_folders_are_named_as_spark_and_hive_decode_them():
    assert hive_segment("genre", "드라마") == "genre=드라마"  # UTF-8 kept: pyarrow's URI encoding wrote %EB%93%9C...
    assert hive_segment("genre", "") == hive_segment("genre", None) == "genre=__HIVE_DEFAULT_PARTITION__"
    assert hive_segment("genre", "a/b=c%d:e") == "genre=a%2Fb%3Dc%25d%3Ae"
    assert hive_segment("code", "007") == "code=007" and hive_segment("flag", True) == "flag=true"


def test_thousands_of_partition_values_write_one_folder_each(tmp_path):
    rows = 5000
    batch = pa.table({
        "review_id": pa.array(range(rows), pa.int64()), "text": ["좋다"] * rows,
        "code": pa.array([f"{i % 2500:04d}" if i % 2500 else None for i in range(rows)]),
        "reason": pa.array([None] * rows, pa.string()), "truncated": [False] * rows,
        "label": pa.array([1] * rows, pa.int64()), "label_name": ["긍정"] * rows,
        "score": pa.array([0.9] * rows, pa.float32()),
        "probabilities": pa.FixedSizeListArray.from_arrays(pa.array([0.1, 0.9] * rows, pa.float32()), 2),
        "labeled_by": pa.array(["actor-a"] * rows).dictionary_encode(),
    })
    summary = write(tmp_path, batch=batch, pass_through=["code"], partition_column="code")
    folders = {f.split("/")[0] for f in summary["labeled_files"]}
    assert len(folders) == len(summary["labeled_files"]) == 2500 and "code=__HIVE_DEFAULT_PARTITION__" in folders
    table = pq.read_table(tmp_path / "labeled" / "code=0007")
    assert table["code"].to_pylist() == ["0007", "0007"]  # a string column stays a string, zeros kept


def test_a_nan_score_from_the_model_does_not_crash_the_writer(tmp_path):
    """A model that returns NaN (broken weights, an fp16 overflow) made the score histogram cast NaN to a
    negative bin, and `np.bincount` failed the batch ("'list' argument must have no negative elements"),
    which the CLI even reported as the user's mistake (a ValueError, exit 2)."""
    batch = predicted_batch()
    batch = batch.set_column(batch.schema.get_field_index("score"), "score",
                             pa.array([float("nan"), float("nan"), 0.6, 0.8], pa.float32()))
    summary = write_batch(batch, fs=fsspec.filesystem("file"), staging=str(tmp_path), id_column="review_id",
                          pass_through=["movie_id"], partition_column=None, model_version="v1",
                          labeled_at=LABELED_AT, rows_per_file=1000).to_pylist()[0]
    assert summary["rows_labeled"] == 3
    histograms = json.loads(summary["score_histograms"])
    assert sum(histograms["긍정"]) == 1 and sum(histograms["부정"]) == 1  # the NaN score is in no bin
