"""Label names read from the training data itself, with pyarrow (no Ray job), from a local file or any URI."""

from __future__ import annotations

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.train.data import labels_from_data

FRAME = pd.DataFrame({"text": list("abcdef"), "label": [2, 0, 1, 0, 2, 1],
                      "label_name": ["긍정", "부정", "중립", "부정", "긍정", "중립"]})


def write(frame: pd.DataFrame, path) -> str:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return str(path)


def test_names_come_from_label_name_else_the_ids(tmp_path):
    assert labels_from_data(write(FRAME, tmp_path / "named.parquet"), "label") == ["부정", "중립", "긍정"]
    assert labels_from_data(write(FRAME.drop(columns="label_name"), tmp_path / "ids.parquet"), "label") == \
        ["0", "1", "2"]


def test_ids_that_are_not_0_to_k_minus_1_or_have_two_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="0..K-1"):
        labels_from_data(write(FRAME.assign(label=FRAME["label"] + 1), tmp_path / "shifted.parquet"), "label")
    with pytest.raises(ValueError, match="two names"):
        labels_from_data(write(FRAME.assign(label_name=list("uvwxyz")), tmp_path / "clash.parquet"), "label")
    with pytest.raises(ValueError, match=r"no column\(s\) \['stars'\]"):
        labels_from_data(write(FRAME, tmp_path / "x.parquet"), "stars")


def test_a_folder_of_parts_at_a_uri_is_read_whole():
    fs = fsspec.filesystem("memory")
    with fs.open("/labels-test/train/part-0.parquet", "wb") as handle:
        pq.write_table(pa.Table.from_pandas(FRAME.iloc[:3].drop(columns="label_name"), preserve_index=False), handle)
    with fs.open("/labels-test/train/part-1.parquet", "wb") as handle:
        pq.write_table(pa.Table.from_pandas(FRAME.iloc[3:].drop(columns="label_name"), preserve_index=False), handle)
    try:
        assert labels_from_data("memory://labels-test/train", "label") == ["0", "1", "2"]
    finally:
        fs.rm("/labels-test", recursive=True)
