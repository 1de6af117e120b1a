"""The `kobert` command: one entry point, one subcommand per pipeline.

    kobert --help
    kobert init-model --preset tiny --output models/tiny

Subcommand modules are imported to build their options (they keep heavy imports inside `run`), so
`kobert --help` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kobert",
        description="Fine-tune KoBERT with Ray Train and bulk-label Parquet corpora with Ray Data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
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
    args = build_parser().parse_args(argv)
    keep_ray_data_off_the_console(args.verbose)
    console.setup(args.command, args.verbose)
    try:
        return args.run(args)
    except (UserError, FileNotFoundError, ValueError) as error:
        print(redact(f"kobert {args.command}: error: {error}"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
