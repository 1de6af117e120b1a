"""What `kobert train` and `kobert pretrain` print: one JSON line of the best epoch, or one error line.

A run that gave up after its retries exits 1 with the line that says how to continue (`--resume`); a
user's mistake is printed by the CLI entry point (exit 2).
"""

from __future__ import annotations

import json
import sys

from pipelines import console
from pipelines.errors import TrainingFailed


def run_and_print(command: str, run, job, metrics: tuple[str, ...]) -> int:
    """`run(job)`, then `{"output", "best_epoch", <metrics of the best epoch>}` on stdout; exit status."""
    try:
        summary = run(job)
    except TrainingFailed as error:
        print(f"kobert {command}: error: {error}", file=sys.stderr)
        return 1
    best = summary["best"]
    if console.logs_line():  # on stderr: stdout stays one JSON line for scripts
        print(console.logs_line().strip(), file=sys.stderr)
    print(json.dumps({"output": summary["output"], "best_epoch": best["epoch"], **{name: best[name] for name in metrics}},
                     ensure_ascii=False))
    return 0
