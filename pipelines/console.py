"""What a person watching a `kobert` command sees: one progress bar per long stage, a summary at the end,
warnings that concern them, and nothing else. Everything else goes to the command's log file, which the
summary names.

Where the noise came from, and where it goes now (`kobert -v` keeps all of it on the console):

- our own INFO lines (`training tiny on 1350 rows`)             → the log file; WARNING and above stay on stderr
- Ray's Python logger `ray` (token-auth notices, "Started a local Ray instance")  → the log file
- the output of Ray's workers and actors (TrainController, epoch dicts, transformers' bars) → Ray's own logs
  only (`log_to_driver=False`): `<session>/logs/worker-*.out`, named in the summary
- the raylet's warnings pushed to the driver ("8 PYTHON worker processes have been started") → the log file
- Ray's C++ core in this process writes error lines straight to file descriptor 2, past Python's logging
  (e.g. "constructor arguments in the object store and max_restarts > 0", ray-project/ray#53727, raised for
  every Ray Data actor pool): `cpp_lines_to_log` sends the lines in glog's format to the log file and lets
  every other byte through.
- Hugging Face progress bars ("Loading weights", "Writing model shards") → off.

A program that calls our functions without the CLI keeps Python's and Ray's defaults: nothing here runs
unless `setup` was called.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

LOG_DIR_ENV = "KOBERT_LOG_DIR"
LOG_ONLY = "log_only"  # a record with `extra={LOG_ONLY: True}` goes to the log file, never the console
PLAIN_EVERY_S = 10.0  # a progress line this often when stderr is not a terminal (a log, CI, a Ray job)
# glog's prefix, as Ray's C++ core writes it: "[2026-12-03 18:29:01,767 E 5529 5529] core_worker.cc:2465: ..."
CPP_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [DIWEF] \d+ \d+\] ")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _State:
    quiet = False  # set by `setup` unless verbose
    log_path: Path | None = None
    ray_logs: str | None = None  # the Ray session's logs folder, once our Ray is up
    terminal = False  # stderr is a terminal (decided before any redirection)
    handlers: list = []  # the root logger's handlers `setup` added


def setup(command: str, verbose: bool) -> None:
    """Logging for one CLI command: a log file always; the console gets WARNING and above unless `verbose`."""
    _State.terminal = _isatty(sys.stderr)
    directory = Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "kobert" / "logs")
    root = logging.getLogger()
    for handler in _State.handlers:  # a second command in the same process (tests, notebooks) replaces ours
        root.removeHandler(handler)
        handler.close()
    _State.handlers = []
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(FORMAT if verbose else "%(levelname)s: %(message)s"))
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.addFilter(lambda record: not getattr(record, LOG_ONLY, False))
    root.addHandler(console)
    _State.handlers.append(console)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _State.log_path = directory / f"{command}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        file_handler = logging.FileHandler(_State.log_path, encoding="utf-8")
    except OSError:  # a read-only home or temp: the console still works, only without a log file
        _State.log_path = None
    else:
        file_handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(file_handler)
        _State.handlers.append(file_handler)
    _State.quiet = not verbose
    if not verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers and the hub (and Ray's workers)


def _isatty(stream) -> bool:
    """A terminal with columns to draw in (a pty of width 0, as `script` without a terminal gives, draws nothing)."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return False


def log_path() -> Path | None:
    return _State.log_path


def ray_init_options() -> dict:
    """Options for a `ray.init` of ours, after `import ray`: Ray's logger into the log file, workers' output
    kept in Ray's own logs. Nothing changes for a program that did not go through `setup`."""
    if not _State.quiet:
        return {}
    ray_logger = logging.getLogger("ray")  # Ray gives it a stderr handler of its own at import, propagate off
    for handler in list(ray_logger.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            ray_logger.removeHandler(handler)
    if _State.log_path is not None and not any(isinstance(h, logging.FileHandler) for h in ray_logger.handlers):
        handler = logging.FileHandler(_State.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        ray_logger.addHandler(handler)
    _route_raylet_messages(ray_logger)
    return {"log_to_driver": False, "logging_level": logging.INFO}


def _route_raylet_messages(ray_logger: logging.Logger) -> None:
    """The messages the raylet pushes to every driver ("8 PYTHON worker processes have been started ... 4x the
    maximum expected startup concurrency") are printed to stdout by Ray's error listener whatever
    `log_to_driver` says; they go to the log file instead. A real failure still reaches the user: it is
    raised where it happened and printed as the command's one line."""
    try:
        import ray._private.worker as ray_worker  # no public hook in Ray 2.60
    except ImportError:
        return
    if getattr(ray_worker.print_to_stdstream, "kobert_routed", False):
        return

    def to_log(data, ignore_prefix=False):  # noqa: ARG001 - Ray's signature
        for line in data.get("lines", []):
            ray_logger.warning("(%s) %s", data.get("pid", "ray"), line)

    to_log.kobert_routed = True
    ray_worker.print_to_stdstream = to_log


def note_ray_logs() -> None:
    """Remember where the Ray just started (or joined) keeps its logs, for the summary."""
    try:
        import ray

        _State.ray_logs = ray._private.worker._global_node.get_logs_dir_path()  # no public accessor in 2.60
    except Exception:  # noqa: BLE001 - a remote cluster (RAY_ADDRESS) has no local session folder
        _State.ray_logs = None


def logs_line() -> str | None:
    """`  log         <file> (Ray's own: <session>/logs)` for a summary, or None without a log file."""
    if _State.log_path is None:
        return None
    ray_logs = f" (Ray's own: {_State.ray_logs})" if _State.ray_logs else ""
    return f"  log         {_State.log_path}{ray_logs}"


@contextmanager
def cpp_lines_to_log():
    """While our Ray runs: file descriptor 2 goes through a pump that moves Ray's C++ log lines into the log
    file and passes everything else on; Python's `sys.stderr` writes to the terminal directly meanwhile."""
    if not _State.quiet:
        yield
        return
    sys.stderr.flush()
    original, saved = sys.stderr, os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = io.TextIOWrapper(io.FileIO(os.dup(saved), "w"), encoding=getattr(original, "encoding", None)
                                  or "utf-8", errors="backslashreplace", line_buffering=True)
    pump = threading.Thread(target=_pump, args=(read_end, saved), name="kobert-stderr", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer (unless a child inherited it) closes: the pump drains and ends
        pump.join(timeout=2)
        replaced, sys.stderr = sys.stderr, original
        replaced.close()
        os.close(saved)


def _pump(read_end: int, terminal: int) -> None:
    log = open(_State.log_path, "ab") if _State.log_path else None
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                _route(line + b"\n", log, terminal)
        if pending:
            _route(pending, log, terminal)
    if log:
        log.close()


def _route(line: bytes, log, terminal: int) -> None:
    if not CPP_LINE.match(line):
        os.write(terminal, line)
    elif log is not None:
        log.write(line)
        log.flush()


class Progress:
    """One stage's progress: tqdm's live bar on a terminal; off one, tqdm's own line (count, rate, time
    left) every `PLAIN_EVERY_S` seconds and at the end, so a log file gets lines, not carriage returns."""

    def __init__(self, desc: str, total: int | None, unit: str) -> None:
        from tqdm import tqdm

        self.desc, self.total, self.unit = desc, total, unit
        self.started = self.last_line = time.monotonic()
        self.n, self.postfix = 0, ""
        self.bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=sys.stderr, dynamic_ncols=True,
                        smoothing=0.1) if _State.terminal or _isatty(sys.stderr) else None

    def update(self, n: int, postfix: str = "") -> None:
        """Set the count to `n` (absolute: a resumed run starts where it was)."""
        self.postfix = postfix
        if self.bar is not None:
            self.bar.n = n
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.refresh()
            self.n = n
            return
        self.n = n
        if time.monotonic() - self.last_line >= PLAIN_EVERY_S:
            self._line()

    def write(self, line: str) -> None:
        """A line above the bar (an epoch's result)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._line()

    def _line(self) -> None:
        from tqdm import tqdm

        self.last_line = time.monotonic()
        meter = tqdm.format_meter(self.n, self.total, self.last_line - self.started, prefix=self.desc,
                                  unit=f" {self.unit}", postfix=self.postfix or None, ncols=0)
        print(meter, file=sys.stderr, flush=True)
