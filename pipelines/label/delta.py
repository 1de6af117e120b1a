"""Optional Delta Lake copy (`--delta-table PATH`): the labeled rows of every committed run, copied into a
Delta table elsewhere (another bucket, a catalog's location), each run one ACID commit.

`OUTPUT/labels/` is itself a Delta table of the files a run wrote, with no copy (pipelines/label/delta_labels.py);
this copy is for a table that must live somewhere else. The Parquet output stays the source of truth: after
`_SUCCESS` is written, the table is brought
in line with it: every run the manifest lists and the table lacks is appended, oldest first. Each commit
carries the run id in its metadata (`kobert.run_id`), so a run is appended once however often this is
repeated, and a crash between `_SUCCESS` and the append is repaired by the next run on the same output (even an
`--incremental` run that finds nothing new). When the manifest no longer lists a run the table has
(`--overwrite` replaced it), the table is rewritten from the manifest's runs, the first with an overwrite
commit.

The table holds the labels table's schema (docs/labeling.md, `run_id` included); the partition column, if
any, partitions it. Rejected rows stay in the Parquet output's `rejected/`.
Credentials and endpoints come from the environment (`AWS_*`, `GOOGLE_*`, ...), as deltalake reads them
(`delta_labels.storage_options`: a plain-HTTP endpoint the user chose is allowed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from pipelines.label.delta_labels import storage_options
from pipelines.label.manifest import Manifest
from pipelines.label.output import OutputFolder

RUN_PROPERTY = "kobert.run_id"
INSTALL_HINT = "pip install 'kobert-pipeline[delta]' (the deltalake package)"


@dataclass
class DeltaSync:
    """What a sync did."""

    table: str
    appended_runs: list[str] = field(default_factory=list)
    rows: int = 0
    version: int | None = None
    rewritten: bool = False


def require_deltalake() -> None:
    """Fail before labeling, not after, when `--delta-table` is asked for without the package."""
    try:
        import deltalake  # noqa: F401
    except ImportError:
        from pipelines.errors import UserError

        raise UserError(f"--delta-table needs the deltalake package: {INSTALL_HINT}") from None


def committed_runs(table: str) -> tuple[list[str], bool]:
    """Run ids the table holds now (commits since its last overwrite), and whether the table exists."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        history = DeltaTable(table, storage_options=storage_options()).history()  # newest first
    except TableNotFoundError:
        return [], False
    runs: list[str] = []
    for commit in history:
        if commit.get(RUN_PROPERTY):  # an empty id marks the emptying overwrite of `_truncate`
            runs.append(commit[RUN_PROPERTY])
        if str(commit.get("operationParameters", {}).get("mode", "")).lower() == "overwrite":
            break
    return runs[::-1], True


def sync_delta(output: OutputFolder, manifest: Manifest, table: str) -> DeltaSync:
    """Make `table` hold exactly the labeled rows of the manifest's runs; returns what was appended."""
    from deltalake import DeltaTable

    wanted = manifest.run_ids()
    present, exists = committed_runs(table)
    result = DeltaSync(table=table)
    rewrite = exists and not set(present) <= set(wanted)
    if rewrite:
        present, result.rewritten = [], True
    partition = manifest.columns.get("partition")
    for run in [run for run in manifest.runs if run["run_id"] not in present]:
        run_id = run["run_id"]
        reader, rows = _run_reader(output, run)
        if reader is None:  # every row of the run was rejected: nothing to append
            continue
        _write(table, reader, run_id, partition, mode="overwrite" if rewrite else "append")
        rewrite = False
        result.appended_runs.append(run_id)
        result.rows += rows
    if result.rewritten and not result.appended_runs:  # the manifest's runs have no labeled rows at all
        _truncate(table)
    if exists or result.appended_runs:
        result.version = DeltaTable(table, storage_options=storage_options()).version()
    return result


def _run_reader(output: OutputFolder, run: dict):
    """A streaming reader over one run's committed labeled files (they hold `run_id`); (None, 0) if none."""
    import pyarrow.dataset as pads

    files = [f"{output.root}/{path}" for path in run["files"]["labeled"]]
    if not files:
        return None, 0
    dataset = pads.dataset(files, filesystem=output.fs, format="parquet")
    rows = dataset.count_rows()
    if rows == 0:
        return None, 0
    return pa.RecordBatchReader.from_batches(dataset.schema, dataset.to_batches(batch_size=65_536)), rows


def _write(table: str, reader, run_id: str, partition: str | None, mode: str) -> None:
    from deltalake import CommitProperties, write_deltalake

    write_deltalake(table, reader, mode=mode, partition_by=[partition] if partition else None,
                    storage_options=storage_options(),
                    schema_mode="overwrite" if mode == "overwrite" else None,
                    commit_properties=CommitProperties(custom_metadata={RUN_PROPERTY: run_id}))


def _truncate(table: str) -> None:
    """Empty the table with an overwrite commit (so `committed_runs` stops looking past it)."""
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    empty = DeltaTable(table, storage_options=storage_options()).to_pyarrow_dataset().schema.empty_table()
    write_deltalake(table, empty, mode="overwrite", storage_options=storage_options(),
                    commit_properties=CommitProperties(custom_metadata={RUN_PROPERTY: ""}))
