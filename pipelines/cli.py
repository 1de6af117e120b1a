"""The `kobert` command: one entry point, one subcommand per pipeline.

    kobert --help
    kobert init-model --preset tiny --output models/tiny

Subcommand modules are imported to build their options (they keep heavy imports inside `run`), so
`kobert --help` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path

from pipelines import console
from pipelines.errors import UserError
from pipelines.redact import redact
from pipelines.ray_logs import keep_ray_data_off_the_console

# name -> module with HELP, add_arguments(parser) and run(args) -> exit code
COMMANDS: dict[str, str] = {
    "init-model": "pipelines.init_model",
    "label": "pipelines.label.command",
    "demo": "pipelines.demo",
    "prepare": "pipelines.prepare",
    "train": "pipelines.train.command",
    "pretrain": "pipelines.pretrain.command",
    "recipe": "pipelines.recipes.nsmc",
    "evaluate": "pipelines.evaluate",
    "export": "pipelines.export",
    "submit": "cluster.submit",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `kobert` parser. Given the command line, only the subcommand it names is imported and built (the
    others' modules took ~0.13 s to import and build, a cost every hourly `kobert label` paid); without one, or
    with no known subcommand in it, all of them (`kobert --help` lists them, a misspelt one is named)."""
    wanted = next((word for word in argv or [] if not word.startswith("-")), None)
    commands = {wanted: COMMANDS[wanted]} if wanted in COMMANDS else COMMANDS
    parser = argparse.ArgumentParser(
        prog="kobert",
        description="Fine-tune KoBERT with Ray Train and bulk-label Parquet corpora with Ray Data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in commands.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def own_ray_on_loopback() -> None:
    """A Ray this command starts itself (no RAY_ADDRESS) listens on 127.0.0.1 only.

    Ray binds its GCS, raylet and agents to every interface unless `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`,
    which Ray reads when it is imported: so set here, before any subcommand imports Ray. Against a cluster
    (RAY_ADDRESS set, as in a Ray job) nothing changes.
    """
    if not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def main(argv: list[str] | None = None) -> int:
    own_ray_on_loopback()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    keep_ray_data_off_the_console(args.verbose)
    console.setup(args.command, args.verbose)
    try:
        return args.run(args)
    except Exception as error:  # noqa: BLE001 - every failure becomes one line; the traceback goes to the log
        if users_mistake(error):
            print(redact(f"kobert {args.command}: error: {error}"), file=sys.stderr)
            return 2
        logging.getLogger("kobert").error("kobert %s failed", args.command, exc_info=error,
                                          extra={console.LOG_ONLY: True})
        if args.verbose:
            traceback.print_exception(error, file=sys.stderr)
        print(redact(failure_line(args.command, error)), file=sys.stderr)
        return 1


OURS = tuple(str(Path(__file__).resolve().parents[1] / package) + os.sep for package in ("pipelines", "kobert_ops"))


def users_mistake(error: BaseException) -> bool:
    """A mistake the user can fix (exit 2): a `UserError`, a missing file, or a `ValueError` that this project's
    own code raised about its input (their messages name the option or path). A `ValueError` raised inside a
    library (numpy, torch, Ray) is a failure of the run (exit 1), not something the user typed."""
    if isinstance(error, (UserError, FileNotFoundError)):
        return True
    if not isinstance(error, ValueError):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(OURS)


def failure_line(command: str, error: BaseException) -> str:
    """`kobert C: failed: <Type>: <first line>; traceback in <log> (-v prints it)` for a failure of the run."""
    message = (str(error).strip().splitlines() or [""])[0]
    where = f"; traceback in {console.log_path()}" if console.log_path() else ""
    return f"kobert {command}: failed: {type(error).__name__}: {message}{where} (-v prints it)"


if __name__ == "__main__":
    sys.exit(main())
