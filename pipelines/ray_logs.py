"""Ray Data's own log stays off the terminal: a failure inside Ray reaches the user as one line that names
the log file holding the details.

Ray Data logs to the console as well as to `<session>/logs/ray-data/ray-data.log`: progress blocks while a
dataset runs and, when a task fails, its error log with three tracebacks (~190 lines) before the command's
own one line. Ray reads `RAY_DATA_LOGGING_CONFIG` (a logging config file) when `ray.data` is imported, so
it is set before any subcommand imports Ray; `kobert -v` keeps Ray's default, console included.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("ray_data_logging.yaml")


def keep_ray_data_off_the_console(verbose: bool) -> None:
    """Log Ray Data to its file only (unless `verbose`, or the user chose a config of their own)."""
    if not verbose:
        os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", str(CONFIG))


def ray_data_log_file() -> str | None:
    """The Ray Data log file this process wrote, if any (also after `ray.shutdown()`)."""
    if "ray.data" not in sys.modules:
        return None
    from ray.data._internal.logging import SessionFileHandler

    paths = [getattr(handler, "_path", None) for handler in logging.getLogger("ray.data").handlers
             if isinstance(handler, SessionFileHandler)]
    paths = [path for path in paths if path and os.path.exists(path)]
    return next((path for path in paths if path.endswith("/ray-data.log")), paths[0] if paths else None)


def details_hint() -> str:
    """` (details in <Ray Data's log file>)`, or nothing when Ray Data did not run."""
    path = ray_data_log_file()
    return f" (details in {path})" if path else ""
