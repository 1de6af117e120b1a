"""Validate stage: bad files fail fast with a message naming them; unlabelable rows get a reason."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import UserError
from pipelines.label.read import list_input_files
from pipelines.label.validate import EMPTY_TEXT, NULL_ID, NULL_TEXT, check_files, mark_rejected


def test_reasons_for_null_empty_and_blank_texts():
    batch = pa.table({"review_id": [1, 2, 3, 4, None, 6], "text": ["좋아요", None, "", " \t\n", "글", "\x00"]})
    reasons = mark_rejected(batch, text_column="text", id_column="review_id")["reason"].to_pylist()
    # a control character is still text: it is labeled, not rejected
    assert reasons == [None, NULL_TEXT, EMPTY_TEXT, EMPTY_TEXT, NULL_ID, None]


def check(path, columns=("review_id", "text")):
    fs, files = list_input_files([str(path)])
    return check_files(fs, files, "text", list(columns))


def test_row_count_comes_from_footers(tmp_path):
    pq.write_table(pa.table({"review_id": [1, 2, 3], "text": ["a", "b", None]}), tmp_path / "a.parquet")
    rows, schemas = check(tmp_path)
    assert rows == 3 and list(schemas.values()) == [pa.schema([("review_id", pa.int64()), ("text", pa.string())])]


def test_missing_column_is_named(tmp_path):
    pq.write_table(pa.table({"review_id": [1], "body": ["a"]}), tmp_path / "a.parquet")
    with pytest.raises(UserError, match=r"a.parquet has no column 'text'"):
        check(tmp_path)


def test_non_string_text_column_is_named(tmp_path):
    pq.write_table(pa.table({"review_id": [1], "text": [5]}), tmp_path / "a.parquet")
    with pytest.raises(UserError, match=r"text column 'text' .* is int64, not a string"):
        check(tmp_path)


def test_corrupt_file_is_named(tmp_path):
    pq.write_table(pa.table({"review_id": [1], "text": ["a"]}), tmp_path / "good.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UserError, match=r"broken.parquet is not a readable Parquet file"):
        check(tmp_path)
