"""The output folder: its layout, a lock, clean-up of incomplete runs, and the commit of a run.

    OUTPUT/_SUCCESS                          manifest, written last (pipelines/label/manifest.py)
    OUTPUT/run_id=<run>/[<col>=<v>/]*.parquet labeled rows of one run (Hive partitions)
    OUTPUT/_rejected/run_id=<run>/*.parquet  rows that could not be labeled, with a reason
    OUTPUT/_reports/run_id=<run>/            report.md, label_distribution.png, label_stats.json
    OUTPUT/_staging/<run>/                   files of a run in progress (never read)
    OUTPUT/_LOCK.<generation>                the lease of the run working on OUTPUT (pipelines/label/lease.py)

Anything not named in `_SUCCESS` is debris of an interrupted run and is deleted before the next run, so
re-running the same command never duplicates rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import UserError
from pipelines.label.lease import PREFIX as LEASE_PREFIX
from pipelines.label.manifest import SUCCESS, Manifest, read_manifest, remove_manifest
from pipelines.label.write import LABELED_DIR, REJECTED_DIR

RUN_PREFIX, REJECTED, REPORTS, STAGING = "run_id=", "_rejected", "_reports", "_staging"
REPORT_DIR = "report"  # inside a run's staging folder
OURS = (SUCCESS, SUCCESS + ".tmp", REJECTED, REPORTS, STAGING)


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

    def run_dir(self, run_id: str) -> str:
        return f"{self.root}/{RUN_PREFIX}{run_id}"

    def rejected_dir(self, run_id: str) -> str:
        return f"{self.root}/{REJECTED}/{RUN_PREFIX}{run_id}"

    def report_dir(self, run_id: str) -> str:
        return f"{self.root}/{REPORTS}/{RUN_PREFIX}{run_id}"

    def staging_dir(self, run_id: str) -> str:
        return f"{self.root}/{STAGING}/{run_id}"

    def manifest(self) -> Manifest | None:
        try:
            return read_manifest(self.fs, self.root)
        except ValueError as error:
            raise UserError(f"{self.root}/{SUCCESS} is not a manifest this tool wrote: {error}") from None

    # ------------------------------------------------------------------ clean-up
    def entries(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)]

    def remove_debris(self, keep_runs: list[str]) -> None:
        """Delete staging folders and run partitions not in `keep_runs`; refuse if OUTPUT holds foreign files."""
        names = self.entries()
        foreign = [n for n in names if n not in OURS and not n.startswith((RUN_PREFIX, LEASE_PREFIX))]
        if foreign:
            raise UserError(f"output {self.root} holds files this tool did not write ({', '.join(sorted(foreign)[:5])}); "
                            "choose an empty or new output folder")
        keep = {RUN_PREFIX + run for run in keep_runs}
        for name in names:
            if name.startswith(RUN_PREFIX) and name not in keep or name in (STAGING, SUCCESS + ".tmp"):
                self.fs.rm(f"{self.root}/{name}", recursive=True)
        for per_run in (REJECTED, REPORTS):
            per_run_root = f"{self.root}/{per_run}"
            if self.fs.exists(per_run_root):
                for path in self.fs.ls(per_run_root, detail=False):
                    if path.rstrip("/").rsplit("/", 1)[-1] not in keep:
                        self.fs.rm(path, recursive=True)

    def prepare(self, incremental: bool, overwrite: bool) -> Manifest | None:
        """Make OUTPUT ready for a run: delete debris of interrupted runs; return the manifest, if complete."""
        self.fs.invalidate_cache()  # object-store listings may be cached from before other processes wrote
        manifest = self.manifest()
        if manifest is not None and not (incremental or overwrite):
            raise UserError(f"output {self.root} is already complete (run {manifest.run_ids()[-1]}); pass "
                            "--incremental to label new input files, or --overwrite to replace it")
        self.remove_debris(keep_runs=manifest.run_ids() if manifest else [])
        return manifest

    # ------------------------------------------------------------------ commit
    def commit(self, run_id: str, labeled_files: list[str], rejected_files: list[str],
               manifest: Manifest, replace_runs: list[str]) -> None:
        """Move the run's staged files into place, drop replaced runs, then write `_SUCCESS` last."""
        self.fs.invalidate_cache()  # the files were written by other processes (Ray workers)
        if replace_runs:
            remove_manifest(self.fs, self.root)  # the output is incomplete from here until the new manifest
        staging = self.staging_dir(run_id)
        for relative in labeled_files:
            self._move(f"{staging}/{LABELED_DIR}/{relative}", f"{self.run_dir(run_id)}/{relative}")
        for relative in rejected_files:
            self._move(f"{staging}/{REJECTED_DIR}/{relative}", f"{self.rejected_dir(run_id)}/{relative}")
        report = f"{staging}/{REPORT_DIR}"
        if self.fs.exists(report):
            for path in self.fs.ls(report, detail=False):
                self._move(path, f"{self.report_dir(run_id)}/{path.rstrip('/').rsplit('/', 1)[-1]}")
        for old in replace_runs:
            for path in (self.run_dir(old), self.rejected_dir(old), self.report_dir(old)):
                if self.fs.exists(path):
                    self.fs.rm(path, recursive=True)
        if self.fs.exists(f"{self.root}/{STAGING}"):
            self.fs.rm(f"{self.root}/{STAGING}", recursive=True)
        from pipelines.label.manifest import write_manifest

        write_manifest(self.fs, self.root, manifest)

    def _move(self, source: str, target: str) -> None:
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(source, target)

