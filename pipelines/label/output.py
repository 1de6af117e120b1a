"""The output folder: its layout, clean-up of incomplete runs, and the commit of a run.

    OUTPUT/_SUCCESS                                 manifest, written last: the commit (pipelines/label/manifest.py)
    OUTPUT/labels/run_id=<run>/[<col>=<v>/]*.parquet  the labels table: labeled rows only (Hive folders)
    OUTPUT/labels/_delta_log/                       the same files as a Delta table (pipelines/label/delta_labels.py)
    OUTPUT/rejected/run_id=<run>/*.parquet          rows that could not be labeled, with a reason
    OUTPUT/reports/run_id=<run>/                    report.md, label_distribution.png, label_stats.json
    OUTPUT/_staging/<run>/                          files of a run in progress (never read)
    OUTPUT/_LOCK.<generation>                       the lease of the run working on OUTPUT (pipelines/label/lease.py)

The labels table has a folder of its own so that a glob or an external table over it (`labels/**/*.parquet`)
finds labeled rows only, never rejects, reports or staged files. What is committed is what `_SUCCESS` lists
(`files`): it is one object, replaced in one step, so a reader that takes its file list sees a run whole or
not at all. Anything not named in `_SUCCESS` is debris of an interrupted run and is deleted by the next run,
so re-running the same command never duplicates rows; but only once the Delta table has been brought in line
with `_SUCCESS` (`sync`), so no file a Delta commit still references is ever deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import UserError
from pipelines.label.lease import PREFIX as LEASE_PREFIX
from pipelines.label.manifest import SUCCESS, Manifest, read_manifest, write_manifest
from pipelines.label.write import LABELED_DIR, REJECTED_DIR

RUN_PREFIX, LABELS, REJECTED, REPORTS, STAGING = "run_id=", "labels", "rejected", "reports", "_staging"
DELTA_LOG = "_delta_log"  # inside labels/: the Delta table's log, kept by every clean-up
REPORT_DIR = "report"  # inside a run's staging folder
PER_RUN = (LABELS, REJECTED, REPORTS)  # folders holding one run_id=<run>/ folder per committed run
OURS = (SUCCESS, SUCCESS + ".tmp", STAGING, *PER_RUN)


@dataclass
class OutputFolder:
    """An output folder on an fsspec filesystem."""

    fs: object
    root: str  # path inside fs, no trailing slash

    @classmethod
    def of(cls, uri: str) -> "OutputFolder":
        from pipelines.label.read import filesystem_of

        fs, path = filesystem_of(uri)
        return cls(fs, path.rstrip("/"))

    def run_dir(self, run_id: str, kind: str = LABELS) -> str:
        """A run's folder in `kind` (labels, rejected or reports)."""
        return f"{self.root}/{kind}/{RUN_PREFIX}{run_id}"

    def staging_dir(self, run_id: str) -> str:
        return f"{self.root}/{STAGING}/{run_id}"

    def manifest(self) -> Manifest | None:
        try:
            return read_manifest(self.fs, self.root)
        except ValueError as error:
            raise UserError(f"{self.root}/{SUCCESS} is not a manifest this version writes ({error}); label into a "
                            "new output folder") from None

    # ------------------------------------------------------------------ clean-up
    def entries(self, folder: str | None = None) -> list[str]:
        path = f"{self.root}/{folder}" if folder else self.root
        if not self.fs.exists(path):
            return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)]

    def remove_debris(self, keep_runs: list[str]) -> None:
        """Delete staging folders and run folders not in `keep_runs`; refuse if OUTPUT holds foreign files."""
        names = self.entries()
        foreign = [n for n in names if n not in OURS and not n.startswith(LEASE_PREFIX)]
        if foreign:
            raise UserError(f"output {self.root} holds files this tool did not write ({', '.join(sorted(foreign)[:5])}); "
                            "choose an empty or new output folder")
        for name in (STAGING, SUCCESS + ".tmp"):
            if name in names:
                self.fs.rm(f"{self.root}/{name}", recursive=True)
        keep = {RUN_PREFIX + run for run in keep_runs} | {DELTA_LOG}
        for kind in PER_RUN:
            for name in self.entries(kind):
                if name not in keep:
                    self.fs.rm(f"{self.root}/{kind}/{name}", recursive=True)

    def prepare(self, incremental: bool, overwrite: bool, sync=None) -> Manifest | None:
        """Make OUTPUT ready for a run: bring the Delta table in line with the manifest (`sync(manifest)`, which
        repairs a run killed between `_SUCCESS` and its Delta commit), then delete debris of interrupted runs;
        return the manifest, if complete."""
        self.fs.invalidate_cache()  # object-store listings may be cached from before other processes wrote
        manifest = self.manifest()
        if manifest is not None and not (incremental or overwrite):
            raise UserError(f"output {self.root} is already complete (run {manifest.run_ids()[-1]}); pass "
                            "--incremental to label new input files, or --overwrite to replace it")
        if sync is not None:
            sync(manifest)
        self.remove_debris(keep_runs=manifest.run_ids() if manifest else [])
        return manifest

    # ------------------------------------------------------------------ commit
    @staticmethod
    def committed_paths(run_id: str, labeled_files: list[str], rejected_files: list[str],
                        report_files: list[str]) -> dict[str, list[str]]:
        """Where the commit puts a run's files, relative to OUTPUT: what the manifest lists."""
        folder = f"{RUN_PREFIX}{run_id}"
        return {"labeled": [f"{LABELS}/{folder}/{path}" for path in labeled_files],
                "rejected": [f"{REJECTED}/{folder}/{path}" for path in rejected_files],
                "reports": [f"{REPORTS}/{folder}/{path}" for path in report_files]}

    def staged_reports(self, run_id: str) -> list[str]:
        return self.entries(f"{STAGING}/{run_id}/{REPORT_DIR}")

    def commit(self, run_id: str, labeled_files: list[str], rejected_files: list[str],
               manifest: Manifest, replace_runs: list[str], sync=None):
        """Move the run's staged files into place, write `_SUCCESS` (the commit), commit the Delta table
        (`sync(manifest)`, whose result is returned), then drop replaced runs.

        Until `_SUCCESS` is replaced, it lists the previous runs' files, all still there: an `--overwrite` that
        dies part-way leaves the previous table readable, and its moved files are debris for the next run.
        Replaced runs' files are deleted only after the Delta commit that removes them from the table: if it
        fails, they stay until the next run's `prepare` has committed it."""
        self.fs.invalidate_cache()  # the files were written by other processes (Ray workers)
        staging = self.staging_dir(run_id)
        for relative in labeled_files:
            self._move(f"{staging}/{LABELED_DIR}/{relative}", f"{self.run_dir(run_id)}/{relative}")
        for relative in rejected_files:
            self._move(f"{staging}/{REJECTED_DIR}/{relative}", f"{self.run_dir(run_id, REJECTED)}/{relative}")
        for name in self.staged_reports(run_id):
            self._move(f"{staging}/{REPORT_DIR}/{name}", f"{self.run_dir(run_id, REPORTS)}/{name}")
        write_manifest(self.fs, self.root, manifest)
        synced = sync(manifest) if sync is not None else None
        for old in replace_runs:
            for kind in PER_RUN:
                if self.fs.exists(self.run_dir(old, kind)):
                    self.fs.rm(self.run_dir(old, kind), recursive=True)
        if self.fs.exists(f"{self.root}/{STAGING}"):
            self.fs.rm(f"{self.root}/{STAGING}", recursive=True)
        return synced

    def _move(self, source: str, target: str) -> None:
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(source, target)
