"""The failures a `kobert` command reports in one line instead of a traceback.

`UserError` is a mistake the user can fix (a path, a column, an option): exit status 2. `TrainingFailed` is
a run that gave up after its retries: exit status 1, with the checkpoints kept for `--resume`.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (missing path or column, bad option); printed without a traceback."""


class TrainingFailed(RuntimeError):
    """Ray Train gave up (failures beyond --max-failures); the checkpoints so far are kept for --resume."""
