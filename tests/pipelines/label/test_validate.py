"""Validate stage: bad files fail fast with a message naming them; unlabelable rows get a reason."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import UserError
from pipelines.label.read import list_input_files
from pipelines.label.validate import EMPTY_TEXT, INVALID_UTF8, NULL_ID, NULL_TEXT, check_files, mark_rejected
from tests.pipelines.label.helpers import INVALID_UTF8 as BAD_BYTES
from tests.pipelines.label.helpers import unchecked_strings


def test_reasons_for_null_empty_and_blank_texts():
    batch = pa.table({"review_id": [1, 2, 3, 4, None, 6], "text": ["좋아요", None, "", " \t\n", "글", "\x00"]})
    reasons = mark_rejected(batch, text_column="text", id_column="review_id")["reason"].to_pylist()
    # a control character is still text: it is labeled, not rejected
    assert reasons == [None, NULL_TEXT, EMPTY_TEXT, EMPTY_TEXT, NULL_ID, None]


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_invalid_utf8_in_any_string_column_is_a_reason_not_a_crash(kind):
    """Stray bytes or a surrogate in the text or a pass-through column used to stop the whole job with
    "Invalid UTF8 sequence in input" (from pyarrow's whitespace trim); now only those rows are rejected, and
    the bad bytes become U+FFFD, so no later stage or reader of `rejected/` meets them."""
    text = unchecked_strings(["좋아요".encode(), *BAD_BYTES, None, "글".encode()], kind)
    movie = unchecked_strings([b"m1", b"m2", b"m3", b"m4", b"m5", b"\xc3(bad"], kind)
    batch = pa.table({"review_id": [1, 2, 3, 4, 5, None], "text": text, "movie_id": movie})
    with pytest.raises(pa.ArrowInvalid):
        batch.validate(full=True)  # the test really holds invalid UTF-8
    marked = mark_rejected(batch, text_column="text", id_column="review_id")
    marked.validate(full=True)
    assert marked["reason"].to_pylist() == [None, INVALID_UTF8, INVALID_UTF8, INVALID_UTF8, NULL_TEXT, NULL_ID]
    assert marked["text"].to_pylist()[1].startswith("\ufffd") and marked["text"].to_pylist()[0] == "좋아요"
    only_movie = pa.table({"review_id": [1, 2], "text": ["좋다", "싫다"], "movie_id": unchecked_strings([b"ok", b"\xff"])})
    assert mark_rejected(only_movie, text_column="text", id_column="review_id")["reason"].to_pylist() == [
        None, INVALID_UTF8]


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
