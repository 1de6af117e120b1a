"""The `_SUCCESS` manifest: written last, it makes an output complete and remembers what was labeled.

It is one JSON document. `files` lists every committed data file (relative to OUTPUT), so a reader that
takes its list sees exactly the committed rows; `schema` is the labels table's; `runs` lists every committed
run (its input files, row counts, labels, timings and files); `--incremental` labels only input files whose
(path, size, mtime/etag) no committed run has. A reader that finds no `_SUCCESS` must treat the folder as
incomplete (see docs/labeling.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipelines.label.read import InputFile

SUCCESS = "_SUCCESS"
FORMAT = "kobert-labels/2"  # 2: labels/, rejected/, reports/ folders; files and schema listed


@dataclass
class Manifest:
    """What `_SUCCESS` holds: the output's settings and its committed runs (oldest first)."""

    output: str
    model: dict[str, Any]
    columns: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    schema: dict[str, Any] | None = None  # pipelines.label.schema.to_json of the labels table

    def files(self, kind: str) -> list[str]:
        """Committed files of `kind` (labeled, rejected, reports) over all runs, relative to OUTPUT."""
        return [path for run in self.runs for path in run["files"][kind]]

    def labeled_files(self) -> list[InputFile]:
        """Every input file some committed run labeled."""
        return [InputFile(**f) for run in self.runs for f in run["input_files"]]

    def run_ids(self) -> list[str]:
        return [run["run_id"] for run in self.runs]

    def sequence(self) -> int:
        """The latest run's sequence number: 1, 2, ... over the output's whole life (an `--overwrite` goes on
        counting), so it can version the Delta table's application transaction. A manifest written before
        runs recorded one counts positions. 0 without runs."""
        if not self.runs:
            return 0
        return int(self.runs[-1].get("sequence") or len(self.runs))

    def to_json(self) -> dict[str, Any]:
        totals = {key: sum(run["rows"][key] for run in self.runs) for key in ("read", "labeled", "rejected")}
        latest = self.runs[-1] if self.runs else {}
        return {
            "format": FORMAT,
            "complete": True,
            "output": self.output,
            "run_id": latest.get("run_id"),
            "model": self.model,
            "columns": self.columns,
            "schema": self.schema,
            "files": {kind: self.files(kind) for kind in ("labeled", "rejected")},
            "input_files": [f for run in self.runs for f in run["input_files"]],
            "rows": totals,
            "timings": latest.get("timings", {}),
            "runs": self.runs,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> "Manifest":
        if document.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {document.get('format')!r} (expected {FORMAT})")
        return cls(output=document["output"], model=document["model"], columns=document["columns"],
                   runs=document["runs"], schema=document.get("schema"))


def read_manifest(fs, output: str) -> Manifest | None:
    """The manifest of a complete output, or None when `_SUCCESS` is absent."""
    path = f"{output.rstrip('/')}/{SUCCESS}"
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as handle:
        return Manifest.from_json(json.load(handle))


def write_manifest(fs, output: str, manifest: Manifest) -> None:
    """Write `_SUCCESS` (the last step of a run): a single small object, so readers see all or nothing."""
    text = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"
    final = f"{output.rstrip('/')}/{SUCCESS}"
    fs.pipe_file(final + ".tmp", text.encode())  # then a rename: local readers never see half a manifest
    fs.mv(final + ".tmp", final)
