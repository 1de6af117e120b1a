"""Run statistics: progress lines while a run goes, and the one-screen summary at its end."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass
class RunStats:
    """Totals gathered from the write stage's summary rows."""

    expected_rows: int = 0
    labeled: int = 0
    rejected: int = 0
    truncated: int = 0
    labels: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    score_histograms: dict[str, list[int]] = field(default_factory=dict)
    actors: Counter = field(default_factory=Counter)  # labeled rows per resources.worker_identity key
    labeled_files: list[str] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    first_batch_at: float | None = None  # when the first labeled batch was written: a scheduled job's start-up
    _bar: object = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return self.labeled + self.rejected

    def add(self, summary: pa.Table) -> None:
        """Fold in summary rows (`write.SUMMARY_SCHEMA`)."""
        if self.first_batch_at is None and summary.num_rows:
            self.first_batch_at = time.time()
        for row in summary.to_pylist():
            self.labeled += row["rows_labeled"]
            self.rejected += row["rows_rejected"]
            self.truncated += row["rows_truncated"]
            self.labels.update(json.loads(row["label_counts"]))
            self.reasons.update(json.loads(row["reason_counts"]))
            for name, counts in json.loads(row["score_histograms"]).items():
                known = self.score_histograms.setdefault(name, [0] * len(counts))
                self.score_histograms[name] = [a + b for a, b in zip(known, counts)]
            self.actors.update(json.loads(row["actor_rows"]))
            self.labeled_files.extend(row["labeled_files"])
            self.rejected_files.extend(row["rejected_files"])

    def paths(self) -> list[dict]:
        """The distinct paths (runtime, device, precision, why) that labeled this run's rows."""
        seen = {json.dumps(share["path"], sort_keys=True) for share in self.actor_shares() if "path" in share}
        return [json.loads(path) for path in sorted(seen)]

    def actor_shares(self) -> list[dict]:
        """One entry per actor that labeled rows: node_id, actor_id, cpus, threads and rows, by node."""
        shares = [{**json.loads(key), "rows": rows} for key, rows in self.actors.items()]
        return sorted(shares, key=lambda share: (share["node_id"], share["actor_id"]))

    def progress(self) -> None:
        """Move the run's bar (`pipelines.console.Progress`: live on a terminal, a line every 10 s off one)."""
        if self._bar is None:
            from pipelines.console import Progress

            self._bar = Progress("label", self.expected_rows or None, "rows")
        self._bar.update(self.rows, f"{self.rejected:,} rejected" if self.rejected else "")

    def end_progress(self) -> None:
        """Close the bar (its last line off a terminal), before the summary is printed."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def summary_text(stats: RunStats, *, output: str, run_id: str, model: str, model_version: str,
                 files: int, seconds: float, engine: str, report: str | None = None) -> str:
    """The end-of-run summary: rows, rate, label distribution and where things went."""
    lines = [
        f"labeled {stats.labeled:,} of {stats.rows:,} rows from {files} file(s) in {seconds:.1f}s "
        f"({stats.rows / max(seconds, 1e-9):,.0f} rows/s, engine {engine})",
        f"  model       {model} (version {model_version})",
        f"  run         {run_id}",
    ]
    for path in stats.paths():
        floats = f", {path['runs_in']} around it" if path.get("runs_in") and path["precision"] == "int8" else ""
        lines.append(f"  path        {path['runtime']} {path['precision']}{floats} on {path['device']} ({path['why']})")
    for name, count in sorted(stats.labels.items(), key=lambda item: -item[1]):
        share = 100 * count / max(stats.labeled, 1)
        lines.append(f"  label {name:<10} {count:>10,}  {share:5.1f}%  {'#' * round(share / 4)}")
    lines.append(f"  truncated   {stats.truncated:,} rows (labeled, flagged truncated=true)")
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(stats.reasons.items())) or "none"
    lines.append(f"  rejected    {stats.rejected:,} rows ({reasons})")
    lines.append(f"  labels      {output}/labels/run_id={run_id}/ ({len(stats.labeled_files)} files)")
    lines.append(f"  rejected to {output}/rejected/run_id={run_id}/ ({len(stats.rejected_files)} files)")
    if report:
        lines.append(f"  report      {output}/{report} (label distribution and score plots)")
    lines.append(f"  manifest    {output}/_SUCCESS")
    return "\n".join(lines)
