"""Write stage: each batch becomes Parquet files in the run's staging folder; a one-row summary comes back.

Files are written under `OUTPUT/_staging/<run_id>/` (folders starting with `_` are invisible to Hive,
Spark and pyarrow readers) and only moved into place by the commit, which moves exactly the files the
driver received summaries for: a retried task's orphan file is never committed, so no row is duplicated.
The output schema is fixed here (see docs/labeling.md); a warehouse loads it, so change it only additively.
`labeled_by` (which actor labeled a row) is not in it: the summary counts labeled rows per actor instead.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from pipelines.label.predict import LABEL, LABEL_NAME, LABELED_BY, PROBABILITIES, SCORE
from pipelines.label.tokenize import TRUNCATED
from pipelines.label.validate import REASON, accepted_mask

MODEL_VERSION, LABELED_AT = "model_version", "labeled_at"
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
                  model_version: str, labeled_at: datetime) -> pa.Table:
    """The labeled rows of a batch in the output schema (partition column last, for Hive partitioning)."""
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
                rows_per_file: int) -> pa.Table:
    """Write a batch's labeled and rejected rows under `staging`; return its `SUMMARY_SCHEMA` row."""
    labeled = labeled_table(batch, id_column=id_column, pass_through=pass_through,
                            partition_column=partition_column, model_version=model_version, labeled_at=labeled_at)
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
    bins = np.minimum((labeled.column(SCORE).to_numpy() * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
    return {str(name): np.bincount(bins[names == name], minlength=SCORE_BINS).tolist() for name in np.unique(names)}


def _write(table: pa.Table, fs, base_dir: str, partition_column: str | None, rows_per_file: int) -> list[str]:
    """Write `table` (Hive-partitioned if asked) under `base_dir`; the written paths relative to it."""
    if table.num_rows == 0:
        return []
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    written: list[str] = []
    base = fs._strip_protocol(base_dir).rstrip("/")
    pads.write_dataset(
        table, base, filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet",
        partitioning=[partition_column] if partition_column else None, partitioning_flavor="hive",
        basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet", existing_data_behavior="overwrite_or_ignore",
        max_rows_per_file=rows_per_file, max_rows_per_group=min(rows_per_file, 64 * 1024),
        file_visitor=lambda written_file: written.append(written_file.path[len(base) + 1:]),
    )
    return written
