"""Validate stage: check every input file's schema before any work, then mark rows that cannot be labeled.

Checking the Parquet footers first makes bad input fail in seconds with a message naming the file and
column (a corrupt file, a missing column, a text column that is not a string) instead of deep inside a
distributed job. Row-level problems are not errors: such rows get a `reason` and go to `OUTPUT/rejected/`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.errors import UserError
from pipelines.label.read import InputFile

REASON = "reason"
# Why a row was rejected; documented in docs/labeling.md.
NULL_ID, NULL_TEXT, EMPTY_TEXT, INVALID_UTF8 = "null_id", "null_text", "empty_text", "invalid_utf8"


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or kind == getattr(pa, "string_view", str)()


def check_files(fs, files: list[InputFile], text_column: str, columns: list[str]) -> tuple[int, dict[str, pa.Schema]]:
    """Read each file's footer (16 at a time: object stores answer slowly but in parallel); return the total
    row count and each file's Arrow schema of `columns` (for `pipelines.label.schema`).

    Raises:
        UserError: a file is not readable Parquet, lacks one of `columns`, or its text column is not a string.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=16) as pool:
        checked = list(pool.map(lambda file: _check_file(fs, file, text_column, columns), files))
    return sum(rows for rows, _ in checked), {file.path: schema for file, (_, schema) in zip(files, checked)}


def _check_file(fs, file: InputFile, text_column: str, columns: list[str]) -> tuple[int, pa.Schema]:
    try:
        with fs.open(fs._strip_protocol(file.path), "rb") as handle:
            metadata = pq.ParquetFile(handle).metadata
            schema = metadata.schema.to_arrow_schema()
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a broken file
        raise UserError(f"{file.path} is not a readable Parquet file ({type(error).__name__}: {error})") from None
    missing = [name for name in columns if name not in schema.names]
    if missing:
        raise UserError(f"{file.path} has no column {', '.join(map(repr, missing))} (it has {', '.join(schema.names)})")
    kind = schema.field(text_column).type
    if not _is_string(kind):
        raise UserError(f"text column {text_column!r} of {file.path} is {kind}, not a string")
    return metadata.num_rows, pa.schema([schema.field(name) for name in columns])


def mark_rejected(batch: pa.Table, *, text_column: str, id_column: str) -> pa.Table:
    """Add `reason`: null for rows to label, else why the row cannot be labeled (null id, invalid UTF-8 in any
    string column, null or blank text)."""
    batch, invalid = replace_invalid_utf8(batch)
    text = batch.column(text_column)
    blank = pc.equal(pc.utf8_trim_whitespace(text), "")
    reasons = np.full(batch.num_rows, None, dtype=object)
    reasons[np.asarray(blank.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)] = EMPTY_TEXT
    reasons[np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = NULL_TEXT
    reasons[invalid] = INVALID_UTF8
    reasons[np.asarray(batch.column(id_column).is_null().to_numpy(zero_copy_only=False), dtype=bool)] = NULL_ID
    return batch.append_column(REASON, pa.array(reasons, type=pa.string()))


def replace_invalid_utf8(batch: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """The batch with every invalid UTF-8 sequence in its string columns replaced by U+FFFD, and a mask of
    the rows that had one.

    Parquet and pyarrow do not check that strings are UTF-8 (a careless writer leaves stray bytes or CESU-8
    surrogates); pyarrow's string kernels then fail the whole batch. A full validation is one fast pass over
    the bytes, so only a column that fails it is decoded row by row.
    """
    invalid = np.zeros(batch.num_rows, dtype=bool)
    for index, field in enumerate(batch.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        column = batch.column(index)
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        raw = column.cast(pa.large_binary() if pa.types.is_large_string(field.type) else pa.binary(),
                          safe=False).to_pylist()
        texts = []
        for row, value in enumerate(raw):
            if value is None:
                texts.append(None)
                continue
            try:
                texts.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                invalid[row] = True
                texts.append(value.decode("utf-8", errors="replace"))
        batch = batch.set_column(index, field, pa.array(texts, type=field.type))
    return batch, invalid


def accepted_mask(batch: pa.Table) -> np.ndarray:
    """True for rows without a rejection reason."""
    return np.asarray(batch.column(REASON).is_null().to_numpy(zero_copy_only=False), dtype=bool)
