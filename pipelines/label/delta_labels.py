"""`OUTPUT/labels/` as a Delta Lake table: the labels table of record for readers that take no file list.

Every run commits the labeled files it already wrote, in place, as Delta add actions (paths relative to
`labels/`, the `run_id` and `--partition-column` values, size, modification time, row count): no row is
copied. A run is one Delta commit, carrying the application transaction (`kobert-label`, the run's
`sequence` from the manifest) and the run id in its metadata (`kobert.run_id`); a table whose transaction
version has reached the manifest's latest sequence is up to date, so repeating a commit is a no-op.

Order: the manifest is written first and stays the run record (input digests for `--incremental`, row
counts, reports); the Delta table follows it. `sync_labels` makes the table hold exactly the manifest's
labeled files in one commit (adds what it lacks, removes what the manifest no longer lists: `--overwrite`),
so it repairs any earlier crash between `_SUCCESS` and the commit. The output folder runs it after writing
`_SUCCESS` and, on the next run, before deleting anything: a file the manifest no longer names is deleted
only once a Delta commit has removed it too (`OutputFolder.prepare`, `OutputFolder.commit`).

No checkpoints: delta-rs writes `_delta_log/<version>.checkpoint.parquet` every `delta.checkpointInterval`
commits (100 by default), which a plain glob such as DuckDB's `labels/**/*.parquet` would read as data.
The table sets the interval out of reach, so the log is JSON commits only (one per run).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.errors import UserError
from pipelines.label.manifest import Manifest
from pipelines.label.output import DELTA_LOG, LABELS
from pipelines.label.write import HIVE_DEFAULT_PARTITION, RUN_ID

APP_ID = "kobert-label"  # the Delta application transaction id; its version is the run's sequence number
RUN_PROPERTY = "kobert.run_id"
# Never reached, so delta-rs (and Spark, which reads the same property) writes no checkpoint .parquet into
# _delta_log, where globs over labels/ would find it.
CONFIGURATION = {"delta.checkpointInterval": str(2**31 - 1)}
SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "abfs": "az", "abfss": "az", "az": "az"}


@dataclass
class LabelsCommit:
    """What `sync_labels` did to `OUTPUT/labels/_delta_log`."""

    table: str
    version: int
    sequence: int
    added: int = 0
    removed: int = 0
    committed: bool = False  # False: the table already held the manifest's latest run


def table_uri(output) -> str | None:
    """The Delta table URI of `OUTPUT/labels` as deltalake names it, or None on a filesystem it cannot write
    (fsspec's memory://, hdfs://, ...)."""
    protocol = output.fs.protocol if isinstance(output.fs.protocol, str) else output.fs.protocol[0]
    path = f"{output.root}/{LABELS}"
    if protocol in ("file", "local"):
        return path
    scheme = SCHEMES.get(protocol)
    return f"{scheme}://{path}" if scheme else None


def storage_options() -> dict[str, str]:
    """deltalake reads credentials from the environment like s3fs does, but refuses a plain-HTTP endpoint
    (an S3 emulator such as MinIO or moto) unless told: an endpoint the user chose as http:// is allowed."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return {"AWS_ALLOW_HTTP": "true"} if endpoint.startswith("http://") else {}


def has_table(output) -> bool:
    """Whether `OUTPUT/labels` already holds a Delta log."""
    return output.fs.exists(f"{output.root}/{LABELS}/{DELTA_LOG}")


def delta_schema(schema: pa.Schema, output: str):
    """The Delta schema of the labels table; a column Delta cannot hold is refused before any labeling."""
    from deltalake import Schema

    try:
        return Schema.from_arrow(schema)
    except Exception as error:  # deltalake raises a bare Exception naming the Arrow type
        bad = next((f for f in schema if not _fits_delta(f)), None)
        column = f"column {bad.name!r} ({bad.type})" if bad else "a column"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"the labels table of {output} has {column}, which a Delta table cannot hold ({reason}); "
                        "cast it or leave it out of --pass-through, or pass --table-format none") from None


def _fits_delta(field: pa.Field) -> bool:
    from deltalake import Schema

    try:
        Schema.from_arrow(pa.schema([field]))
        return True
    except Exception:
        return False


def partition_columns(manifest: Manifest) -> list[str]:
    partition = manifest.columns.get("partition")
    return [RUN_ID, partition] if partition else [RUN_ID]


def partition_values(relative: str) -> dict[str, str | None]:
    """The partition values of a file from its Hive folders (`run_id=…/<col>=<value>/part-….parquet`, as
    `write.hive_segment` names them): `%XX` decoded, Hive's default folder as null (so "" reads as null, as in
    Hive and Spark)."""
    values: dict[str, str | None] = {}
    for segment in relative.split("/")[:-1]:
        column, _, text = segment.partition("=")
        values[column] = None if text == HIVE_DEFAULT_PARTITION else unquote(text)
    return values


def add_actions(output, files: list[str]) -> list:
    """Add actions for committed files (paths relative to `labels/`), 16 footers at a time."""
    from deltalake.transaction import AddAction

    def action(relative: str) -> AddAction:
        path = f"{output.root}/{LABELS}/{relative}"
        info = output.fs.info(path)
        with output.fs.open(path, "rb") as handle:
            rows = pq.read_metadata(handle).num_rows
        return AddAction(relative, int(info["size"]), partition_values(relative), _modified_ms(info), True,
                         json.dumps({"numRecords": rows}))

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(action, files))


def _modified_ms(info: dict) -> int:
    modified = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("last_modified")
    if hasattr(modified, "timestamp"):
        return int(modified.timestamp() * 1000)
    if isinstance(modified, (int, float)):
        return int(modified * 1000)
    if isinstance(modified, str):
        return int(datetime.fromisoformat(modified.replace("Z", "+00:00")).timestamp() * 1000)
    return int(time.time() * 1000)


def sync_labels(output, manifest: Manifest) -> LabelsCommit:
    """Make `OUTPUT/labels` a Delta table of exactly the manifest's labeled files, in at most one commit."""
    from deltalake import CommitProperties, DeltaTable, Transaction
    from deltalake.exceptions import TableNotFoundError
    from deltalake.transaction import PostCommitHookProperties, RemoveAction, create_table_with_add_actions

    from pipelines.label import schema as table_schema

    uri, options = table_uri(output), storage_options()
    latest = manifest.runs[-1]
    sequence = manifest.sequence()
    schema = table_schema.from_json(manifest.schema)
    wanted_schema = delta_schema(schema, manifest.output)
    partitions = partition_columns(manifest)
    prefix = f"{LABELS}/"
    wanted = {path[len(prefix):] for path in manifest.files("labeled")}
    commit = CommitProperties(custom_metadata={RUN_PROPERTY: latest["run_id"]},
                              app_transactions=[Transaction(APP_ID, sequence)])
    hooks = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)
    result = LabelsCommit(table=uri, version=0, sequence=sequence)
    try:
        table = DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        adds = add_actions(output, sorted(wanted))
        create_table_with_add_actions(uri, wanted_schema, adds, mode="error", partition_by=partitions,
                                      configuration=CONFIGURATION, storage_options=options,
                                      commit_properties=commit, post_commithook_properties=hooks)
        result.added, result.committed = len(adds), True
        return result
    result.version = table.version()
    if (table.transaction_version(APP_ID) or 0) >= sequence:
        return result  # this run (or a later one) is committed already
    present = _live_files(table)
    if wanted_schema.to_json() != table.schema().to_json() or table.metadata().partition_columns != partitions:
        # an --overwrite with other columns: replace the table's metadata too (one commit still)
        create_table_with_add_actions(uri, wanted_schema, add_actions(output, sorted(wanted)), mode="overwrite",
                                      partition_by=partitions, configuration=CONFIGURATION, storage_options=options,
                                      commit_properties=commit, post_commithook_properties=hooks)
        result.added, result.removed = len(wanted), len(present)
    else:
        # explicit removes in an append (not mode="overwrite"): a file both kept and re-added would otherwise be
        # removed and added in one commit
        adds = add_actions(output, sorted(wanted - set(present)))
        now = int(time.time() * 1000)
        removes = [RemoveAction(path, True, now, size, partition_values(path))
                   for path, size in sorted(present.items()) if path not in wanted]
        table.create_write_transaction([*adds, *removes], "append", wanted_schema, partition_by=partitions,
                                       commit_properties=commit, post_commithook_properties=hooks)
        result.added, result.removed = len(adds), len(removes)
    result.version, result.committed = DeltaTable(uri, storage_options=options).version(), True
    return result


def _live_files(table) -> dict[str, int]:
    """Size of every file the table's current version holds, by its path relative to `labels/` (the log
    writes paths percent-encoded)."""
    actions = pa.table(table.get_add_actions(flatten=False))
    return {unquote(path): size for path, size in zip(actions.column("path").to_pylist(),
                                                       actions.column("size_bytes").to_pylist())}


def labels_table_step(output, output_uri: str, table_format: str):
    """The step that commits `OUTPUT/labels` in line with a manifest, for `OutputFolder.prepare` and `commit`
    (`step(manifest)` -> LabelsCommit); None with `--table-format none` on an output that has no Delta table
    yet (one that has keeps it in step, whatever the flag)."""
    if table_format == "none" and not has_table(output):
        return None
    if table_uri(output) is None:
        raise UserError(f"--output {output_uri}: deltalake cannot write a Delta table there (it writes local "
                        "paths, s3://, gs:// and az://); pass --table-format none to keep the manifest only")

    def step(manifest: Manifest | None) -> LabelsCommit | None:
        if manifest is None:
            if has_table(output):
                raise UserError(f"{output_uri}/labels is a Delta table but {output_uri} has no _SUCCESS manifest "
                                "(was it deleted?); this tool will not delete files a Delta commit references: "
                                "label into a new output folder")
            return None
        try:
            return sync_labels(output, manifest)
        except UserError:
            raise
        except Exception as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]  # (no Rust backtrace)
            raise RuntimeError(f"labels are committed to {output_uri}/_SUCCESS, but the Delta commit of "
                               f"{output_uri}/labels failed ({reason}); the next run on this output commits it "
                               "(e.g. the same command with --incremental)") from error

    return step
