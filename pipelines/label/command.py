"""`kobert label`: bulk-label a Parquet corpus with a KoBERT classifier (Ray Data, or in-process when small).

    kobert label --model artifacts/nsmc/model --input ../shared/data/nsmc/reviews.parquet \\
        --output artifacts/labels --text-column text --id-column review_id --pass-through movie_id,rating

    RAY_ADDRESS=ray://head:10001 kobert label --model skt/kobert-base-v1 --input s3://bucket/reviews/ \\
        --output s3://bucket/labels/ --actors 2,8 --device cuda --incremental   # e.g. from cron

The output contract (schema, `labels/` and `rejected/`, the `_SUCCESS` manifest, incremental runs) is in docs/labeling.md.
Exit codes: 0 done (or nothing new with --incremental), 2 bad input or options, 1 the run failed.
"""

from __future__ import annotations

import argparse
import re
import sys

from pipelines.args import add_dataclass_arguments, dataclass_from_args
from pipelines.label.config import LabelConfig

HELP = "label Parquet rows with a classifier: streaming Ray Data pipeline with exactly-once output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, LabelConfig, "labeling")


def run(args: argparse.Namespace) -> int:
    return label(dataclass_from_args(LabelConfig, args))


def label(config: LabelConfig) -> int:
    """Run and print the summary; pipeline failures (not user errors) become a short message and exit 1."""
    from pipelines import console
    from pipelines.errors import UserError
    from pipelines.label.pipeline import run_label
    from pipelines.label.read import corrupt_input
    from pipelines.label.summary import summary_text
    from pipelines.ray_logs import details_hint
    from pipelines.redact import redact

    try:
        result = run_label(config)
    except (UserError, FileNotFoundError, ValueError) as error:  # the user can fix these: no traceback
        print(redact(f"kobert label: error: {error}{details_hint()}"), file=sys.stderr)
        return 2
    except Exception as error:  # e.g. a worker that died; or bad input found inside Ray (wrapped in its errors)
        if (corrupt := corrupt_input(error)) is not None:
            print(redact(f"kobert label: error: {corrupt}{details_hint()}"), file=sys.stderr)
            return 2
        print(redact(f"kobert label: failed, nothing committed: {short_error(error)}{details_hint()}"),
              file=sys.stderr)
        return 1
    if result.run_id is None:
        print(f"nothing new to label: every input file is in {config.output}/_SUCCESS")
    else:
        summary = summary_text(result.stats, output=config.output.rstrip("/"), run_id=result.run_id,
                               model=config.model, model_version=result.model_version, files=result.files,
                               seconds=result.seconds, engine=result.engine,
                               report=result.manifest["runs"][-1].get("report"))
        print(redact(summary))
        if console.logs_line():
            print(console.logs_line())
    if result.labels_table is not None:
        print(labels_table_line(result.labels_table))
    if result.delta is not None:
        print(delta_line(result.delta))
    return 0


def labels_table_line(commit) -> str:
    """The summary's line for `OUTPUT/labels` as a Delta table (pipelines/label/delta_labels.py)."""
    done = (f"run {commit.sequence} committed ({commit.added} file(s) added, {commit.removed} removed)"
            if commit.committed else f"up to date (run {commit.sequence})")
    return f"  delta       {commit.table} version {commit.version}: {done}"


def delta_line(sync) -> str:
    appended = f"appended {sync.rows:,} rows of run(s) {', '.join(sync.appended_runs)}" if sync.appended_runs \
        else "already up to date"
    rewritten = " (rewritten: --overwrite replaced its runs)" if sync.rewritten else ""
    return f"  delta table {sync.table}: {appended}, version {sync.version}{rewritten}"


def short_error(error: BaseException) -> str:
    """One line for an error; a Ray task error carries a remote traceback: keep its exception line and the
    file it names."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    message = raised[-1] if raised else f"{type(error).__name__}: {lines[-1] if lines else ''}"
    fragments = [line.split(" after ")[0] for line in lines if line.startswith("Failed to read")]
    return f"{message} ({fragments[-1]})" if fragments else message
