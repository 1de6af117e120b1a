"""Write stage: each batch becomes Parquet files in the run's staging folder; a one-row summary comes back.

Files are written under `OUTPUT/_staging/<run_id>/` and only moved into place by the commit, which moves
exactly the files the driver received summaries for: a retried task's orphan file is never committed, so no
row is duplicated. The output schema is fixed here (see docs/labeling.md); a warehouse loads it, so change
it only additively. `labeled_by` (which actor labeled a row) is not in it: the summary counts labeled rows
per actor instead.

Every data file holds every column, `run_id` and the partition column included, with their types: a reader
given the manifest's file list needs no folder names. The folders (`run_id=…/<col>=…/`) are Hive's, encoded
as Spark and Hive decode them (`hive_segment`), for readers that discover partitions from paths.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.label.predict import LABEL, LABEL_NAME, LABELED_BY, PROBABILITIES, SCORE
from pipelines.label.tokenize import TRUNCATED
from pipelines.label.validate import REASON, accepted_mask

MODEL_VERSION, LABELED_AT, RUN_ID = "model_version", "labeled_at", "run_id"
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's (and Spark's) folder name for a null value
# Characters Hive's FileUtils.escapePathName writes as %XX (Spark's ExternalCatalogUtils uses the same set):
# ASCII controls, the path and glob specials. Everything else, Hangul included, stays as UTF-8 in the name.
HIVE_ESCAPED = frozenset([chr(code) for code in range(0x01, 0x20)] + list('"#%\'*/:=?\\\x7f{[]^'))
LABELED_DIR, REJECTED_DIR = "labeled", "rejected"
SUMMARY_SCHEMA = pa.schema([
    ("labeled_files", pa.list_(pa.string())),
    ("rejected_files", pa.list_(pa.string())),
    ("rows_labeled", pa.int64()),
    ("rows_rejected", pa.int64()),
    ("rows_truncated", pa.int64()),
    ("label_counts", pa.string()),  # JSON {label_name: rows}
    ("reason_counts", pa.string()),  # JSON {reason: rows}
    ("score_histograms", pa.string()),  # JSON {label_name: [rows per score bin]}, SCORE_BINS bins over [0, 1]
    ("actor_rows", pa.string()),  # JSON {labeled_by key: labeled rows}
])
SCORE_BINS = 20


def labeled_table(batch: pa.Table, *, id_column: str, pass_through: list[str], partition_column: str | None,
                  model_version: str, labeled_at: datetime, run_id: str = "") -> pa.Table:
    """The labeled rows of a batch in the output schema: input columns, model columns, `run_id`, and the
    partition column last (as Hive readers list it)."""
    rows = batch.filter(pa.array(accepted_mask(batch)))
    count = rows.num_rows
    probabilities = rows.column(PROBABILITIES).combine_chunks()
    columns = {name: rows.column(name) for name in [id_column, *pass_through] if name != partition_column}
    columns.update({
        LABEL: rows.column(LABEL).cast(pa.int64()),
        LABEL_NAME: rows.column(LABEL_NAME).cast(pa.string()),
        SCORE: rows.column(SCORE).cast(pa.float32()),
        PROBABILITIES: probabilities.cast(pa.list_(pa.float32())) if count else pa.array([], pa.list_(pa.float32())),
        TRUNCATED: rows.column(TRUNCATED).cast(pa.bool_()),
        MODEL_VERSION: pa.array([model_version] * count, pa.string()),
        LABELED_AT: pa.array([labeled_at] * count, pa.timestamp("us", tz="UTC")),
        RUN_ID: pa.array([run_id] * count, pa.string()),
    })
    if partition_column:
        columns[partition_column] = rows.column(partition_column)
    return pa.table(columns)


def rejected_table(batch: pa.Table, *, id_column: str, pass_through: list[str]) -> pa.Table:
    """The rejected rows of a batch: id, pass-through columns, reason."""
    rows = batch.filter(pa.array(~accepted_mask(batch)))
    return rows.select(list(dict.fromkeys([id_column, *pass_through, REASON])))


def write_batch(batch: pa.Table, *, fs, staging: str, id_column: str, pass_through: list[str],
                partition_column: str | None, model_version: str, labeled_at: datetime,
                rows_per_file: int, run_id: str = "", schema: pa.Schema | None = None) -> pa.Table:
    """Write a batch's labeled and rejected rows under `staging`; return its `SUMMARY_SCHEMA` row.

    `schema`, when given, is the table's (`pipelines.label.schema`): every file is cast to it, so files from
    inputs of different integer widths, or from earlier runs, read as one table."""
    labeled = labeled_table(batch, id_column=id_column, pass_through=pass_through, partition_column=partition_column,
                            model_version=model_version, labeled_at=labeled_at, run_id=run_id)
    if schema is not None:
        labeled = labeled.cast(schema)
    rejected = rejected_table(batch, id_column=id_column, pass_through=pass_through)
    labeled_files = _write(labeled, fs, f"{staging}/{LABELED_DIR}", partition_column, rows_per_file)
    rejected_files = _write(rejected, fs, f"{staging}/{REJECTED_DIR}", None, rows_per_file)
    label_counts = Counter(labeled.column(LABEL_NAME).to_pylist())
    reason_counts = Counter(rejected.column(REASON).to_pylist())
    actor_rows = actor_counts(batch)
    return pa.Table.from_pylist([{
        "labeled_files": labeled_files,
        "rejected_files": rejected_files,
        "rows_labeled": labeled.num_rows,
        "rows_rejected": rejected.num_rows,
        "rows_truncated": int(np.count_nonzero(labeled.column(TRUNCATED).to_numpy(zero_copy_only=False))),
        "label_counts": json.dumps(label_counts, ensure_ascii=False),
        "reason_counts": json.dumps(reason_counts),
        "score_histograms": json.dumps(score_histograms(labeled), ensure_ascii=False),
        "actor_rows": json.dumps(actor_rows),
    }], schema=SUMMARY_SCHEMA)


def actor_counts(batch: pa.Table) -> dict[str, int]:
    """Labeled rows per `labeled_by` key (the actor that labeled them); rejected rows went through no model."""
    if LABELED_BY not in batch.column_names:
        raise KeyError(f"the write stage needs the predict stage's {LABELED_BY!r} column; got {batch.column_names}")
    by = batch.column(LABELED_BY).filter(pa.array(accepted_mask(batch)))
    return dict(Counter(by.to_pylist()))


def score_histograms(labeled: pa.Table) -> dict[str, list[int]]:
    """Rows per bin of `score` (the chosen label's probability), per label: how sure the model was."""
    if labeled.num_rows == 0:
        return {}
    names = np.asarray(labeled.column(LABEL_NAME).to_pylist(), dtype=object)
    scores = labeled.column(SCORE).to_numpy(zero_copy_only=False).astype(np.float64)
    finite = np.isfinite(scores)  # a NaN score (a broken model) is counted in no bin, and fails no batch
    bins = np.clip((np.where(finite, scores, 0) * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
    return {str(name): np.bincount(bins[(names == name) & finite], minlength=SCORE_BINS).tolist()
            for name in np.unique(names)}


def hive_segment(column: str, value) -> str:
    """`column=value` as Hive and Spark write and read a partition folder: null and "" as
    `__HIVE_DEFAULT_PARTITION__`, `HIVE_ESCAPED` characters as %XX, UTF-8 kept (pyarrow's URI encoding
    percent-escapes Hangul, which Spark decodes byte by byte into mojibake)."""
    if value is None or value == "":
        text = HIVE_DEFAULT_PARTITION
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (datetime, date)):
        text = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    else:
        text = str(value)
        text = "".join(f"%{ord(char):02X}" if char in HIVE_ESCAPED else char for char in text)
    return f"{column}={text}"


def partition_groups(table: pa.Table, column: str) -> list[tuple[str, pa.Table]]:
    """(folder, rows) per distinct value of `column`, each folder once (null and "" share Hive's default
    folder). Sorted by folder; any number of values."""
    encoded = pc.dictionary_encode(table.column(column).combine_chunks())
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    values = encoded.dictionary.to_pylist()
    folders: dict[str, list[np.ndarray]] = {}
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.diff(codes[order], prepend=-2))
    for start, end in zip(starts, [*starts[1:], len(order)]):
        code = codes[order[start]]
        folder = hive_segment(column, None if code < 0 else values[code])
        folders.setdefault(folder, []).append(order[start:end])
    return [(folder, table.take(pa.array(np.sort(np.concatenate(rows)))))
            for folder, rows in sorted(folders.items())]


def _write(table: pa.Table, fs, base_dir: str, partition_column: str | None, rows_per_file: int) -> list[str]:
    """Write `table` under `base_dir` (one folder per partition value, if asked), at most `rows_per_file`
    rows per file; the written paths relative to `base_dir`."""
    if table.num_rows == 0:
        return []
    groups = partition_groups(table, partition_column) if partition_column else [("", table)]
    prefix = uuid.uuid4().hex
    written: list[str] = []
    for folder, rows in groups:
        directory = f"{base_dir.rstrip('/')}/{folder}".rstrip("/")
        fs.makedirs(directory, exist_ok=True)
        for number, start in enumerate(range(0, rows.num_rows, rows_per_file)):
            name = f"part-{prefix}-{number}.parquet"
            with fs.open(f"{directory}/{name}", "wb") as handle:
                pq.write_table(rows.slice(start, rows_per_file), handle,
                               row_group_size=min(rows_per_file, 64 * 1024))
            written.append(f"{folder}/{name}" if folder else name)
    return written
