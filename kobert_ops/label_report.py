"""The report of a labeling run: how the labels came out and how sure the model was, as a picture.

A team labeling millions of reviews checks two things before loading them: does the label mix look like
the corpus (a model that calls 97% of reviews positive is broken or mis-pointed), and how many rows sit near
the decision boundary (scores close to 1/labels are coin flips worth a look). `label_distribution.png`
shows both, beside the rejected rows by reason.

Importing matplotlib takes ~0.5 s of a 15 s run (Zen 4, `base` preset, 3,000 reviews). A label run therefore
starts `ReportProcess` first thing: a helper process (this module's `_serve`, on the run's own interpreter and
import path) that imports matplotlib on a core the run's start-up leaves idle, then waits for the run's figures
and draws the report.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kobert_ops.report import _pyplot, plot_labels


def plot_label_distribution(counts: dict[str, int], score_histograms: dict[str, list[int]],
                            reasons: dict[str, int], path: str | Path, title: str = "Labels") -> Path:
    """Bars of rows per label (and rejected rows per reason), and per-label histograms of the score."""
    plt = _pyplot()
    names = sorted(counts, key=lambda name: -counts[name])
    ticks, font = plot_labels(names)
    figure, (bars, scores) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 1.3]})
    total = max(sum(counts.values()) + sum(reasons.values()), 1)
    rows = [counts[name] for name in names] + [reasons[reason] for reason in sorted(reasons)]
    labels = ticks + [f"rejected: {reason}" for reason in sorted(reasons)]
    colors = [f"C{i}" for i in range(len(names))] + ["grey"] * len(reasons)
    positions = np.arange(len(rows))[::-1]
    bars.barh(positions, rows, color=colors)
    bars.set_yticks(positions, labels, **font)
    for position, count in zip(positions, rows):
        bars.text(count, position, f" {count:,} ({count / total:.1%})", va="center", fontsize=9)
    bars.set_xlim(0, max(rows + [1]) * 1.35)
    bars.set_xlabel("rows")
    bars.set_title(title)
    for index, name in enumerate(names):
        histogram = np.asarray(score_histograms.get(name, []), dtype=np.int64)
        if histogram.sum() == 0:
            continue
        edges = np.linspace(0.0, 1.0, len(histogram) + 1)
        scores.stairs(histogram / histogram.sum(), edges, color=f"C{index}", linewidth=1.5, label=ticks[index])
    scores.set_xlabel("score (probability of the chosen label)")
    scores.set_ylabel("share of the label's rows")
    scores.set_title("How sure the model was")
    if names:
        scores.legend(prop={"family": font["fontfamily"]} if font else None)
    scores.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def write_label_report(directory: str | Path, *, run_id: str, counts: dict[str, int],
                       score_histograms: dict[str, list[int]], reasons: dict[str, int], truncated: int,
                       seconds: float, model: str, model_version: str) -> Path:
    """`report.md` + `label_distribution.png` + `label_stats.json` for one labeling run."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plot_label_distribution(counts, score_histograms, reasons, directory / "label_distribution.png",
                            title=f"Labels of run {run_id}")
    labeled, rejected = sum(counts.values()), sum(reasons.values())
    stats = {"run_id": run_id, "labeled": labeled, "rejected": rejected, "truncated": truncated,
             "label_counts": counts, "reject_reasons": reasons, "score_histograms": score_histograms,
             "seconds": round(seconds, 3), "model": model, "model_version": model_version}
    (directory / "label_stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    lines = [
        f"# Labeling run {run_id}",
        "",
        f"**{labeled:,} rows labeled**, {rejected:,} rejected, {truncated:,} truncated (labeled, flagged) "
        f"in {seconds:.1f}s with `{model}` (version `{model_version}`).",
        "",
        "![label distribution](label_distribution.png)",
        "",
        "| label | rows | share | median score | rows with score < 0.6 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in sorted(counts, key=lambda n: -counts[n]):
        histogram = np.asarray(score_histograms.get(name, []), dtype=np.int64)
        lines.append(f"| {name} | {counts[name]:,} | {counts[name] / max(labeled, 1):.1%} | "
                     f"{_median_score(histogram)} | {_below(histogram, 0.6):,} |")
    if reasons:
        lines += ["", "| rejected because | rows |", "|---|---:|"]
        lines += [f"| {reason} | {count:,} |" for reason, count in sorted(reasons.items())]
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _median_score(histogram: np.ndarray) -> str:
    """The median score's bin, as a range (scores are kept as histograms, not per row)."""
    if histogram.sum() == 0:
        return "-"
    index = int(np.searchsorted(np.cumsum(histogram), histogram.sum() / 2))
    width = 1 / len(histogram)
    return f"{index * width:.2f}-{(index + 1) * width:.2f}"


def _below(histogram: np.ndarray, score: float) -> int:
    return int(histogram[: int(round(score * len(histogram)))].sum()) if len(histogram) else 0


# The helper's command: isolated (`-I`: no working folder or PYTHON* variables on its path), then the run's own
# import path, so it runs exactly the code the run imported.
_HELPER = "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from {module} import _serve; sys.exit(_serve())"


class ReportProcess:
    """A helper process, started early, that writes one run's report (`write_label_report`) when asked; the
    report is written in this process instead if the helper cannot start, fails or takes over `timeout_s`."""

    def __init__(self, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s
        self.errors = tempfile.TemporaryFile("w+")  # (a file, not a pipe: warnings can never fill it and block)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", _HELPER.format(module=__name__), json.dumps(sys.path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        except OSError:
            self.process = None

    def write(self, directory: str | Path, **fields) -> Path:
        """`write_label_report(directory, **fields)`, in the helper process when it is there (once)."""
        process, self.process = self.process, None
        if process is not None:
            try:
                process.stdin.write(json.dumps({"directory": str(directory), **fields}) + "\n")
                process.stdin.close()
                if _read_line(process.stdout, self.timeout_s) == "written":
                    _end(process)  # (its files are closed: it only had its exit left)
                    return Path(directory) / "report.md"
            except OSError:
                pass
            _end(process)
            self.errors.seek(0)
            logging.getLogger(__name__).debug("the report process failed: %s", self.errors.read()[-2000:])
        return write_label_report(directory, **fields)

    def close(self) -> None:
        """End the helper if it was never asked for a report (a run with nothing to label, or one that failed)."""
        if self.process is not None:
            _end(self.process)
            self.process = None
        self.errors.close()


def _read_line(stream, timeout_s: float) -> str:
    """One line from `stream`, or "" after `timeout_s` seconds."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        return stream.readline().strip() if selector.select(timeout_s) else ""


def _end(process: subprocess.Popen) -> None:
    """Stop the helper (killed if still running) and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        stream.close()


def _serve() -> int:
    """The helper's side of `ReportProcess`: import the plotting code, then draw what stdin asks for, if anything."""
    with tempfile.TemporaryDirectory() as scratch:  # a first figure drawn for nothing: imports, fonts and the
        plot_label_distribution({"긍정": 1, "negative": 1}, {"긍정": [1, 1]}, {"empty text": 1},  # renderer are
                                Path(scratch) / "warm-up.png")  # then ready for the run's own
    request = sys.stdin.readline()
    if not request.strip():  # the run ended without asking (`ReportProcess.close` kills us first, usually)
        return 0
    fields = json.loads(request)
    write_label_report(fields.pop("directory"), **fields)
    print("written", flush=True)
    return 0
