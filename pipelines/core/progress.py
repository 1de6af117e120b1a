"""Progress lines during an epoch: a pretraining epoch over 600k reviews takes half an hour on a laptop,
and one line at its end is not enough to know whether to wait, or how long."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

log = logging.getLogger(__name__)


class EpochProgress:
    """Logs (on rank 0 only) every `every_s` seconds: steps done of those expected, samples/s over all
    ranks, mean loss since the last line, and the time left at the current rate.

    Args:
        epoch: the epoch's number, for the line.
        expected_steps: optimizer steps this epoch should take (`pipelines.core.data.steps_per_epoch`); None when unknown (no ETA then).
        world_size: ranks stepping in lockstep; samples/s counts all of them.
        enabled: False on every rank but 0.
        board: the driver's `ProgressBoard` (an actor handle), posted to every `post_every_s`; None: no bar.
        first_global_step: the global step before this session's first step of the epoch.
    """

    def __init__(self, epoch: int, expected_steps: int | None, world_size: int, enabled: bool,
                 every_s: float = 30.0, board=None, first_global_step: int = 0, post_every_s: float = 1.0) -> None:
        self.epoch, self.expected_steps, self.world_size = epoch, expected_steps, world_size
        self.enabled, self.every_s = enabled, every_s
        self.board, self.first_global_step, self.post_every_s = board, first_global_step, post_every_s
        self.started = self.last = self.last_post = time.perf_counter()
        self.losses: list[float] = []
        self.lines = 0

    def step(self, steps: int, rows: int, loss) -> None:
        """After each optimizer step: this rank's steps and rows so far, this step's loss (a float, or a
        0-d tensor still on the device: it is read only when a line is printed, not every step)."""
        if not self.enabled:
            return
        self.losses.append(loss)
        now = time.perf_counter()
        if self.board is not None and (now - self.last_post >= self.post_every_s or steps == self.expected_steps):
            self.last_post = now
            self.board.post.remote({"epoch": self.epoch, "global_step": self.first_global_step + steps,
                                    "samples_per_s": rows * self.world_size / max(now - self.started, 1e-9),
                                    "loss": float(loss)})
        if now - self.last < self.every_s:
            return
        self.last = now
        self.lines += 1
        elapsed = now - self.started
        done = f"{steps:,}/{self.expected_steps:,}" if self.expected_steps else f"{steps:,}"
        eta = ""
        if self.expected_steps and steps:
            eta = f", about {_minutes(elapsed / steps * max(self.expected_steps - steps, 0))} left"
        log.info("epoch %d: step %s, %.0f samples/s, loss %.4f%s", self.epoch, done,
                 rows * self.world_size / max(elapsed, 1e-9), float(sum(self.losses)) / len(self.losses), eta)
        self.losses.clear()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class ProgressBoard:
    """Where rank 0 posts its position for the driver's bar: a Ray actor of no CPU on the driver's node.

    With workers' output kept off the driver (`pipelines.console`), the driver would see nothing of a run
    until `fit()` returns; rank 0 posts at most once a second (fire and forget), the driver polls.
    """

    def __init__(self) -> None:
        self.position: dict | None = None
        self.lines: list[str] = []

    def post(self, position: dict) -> None:
        self.position = position

    def epoch(self, line: str) -> None:
        self.lines.append(line)

    def take(self) -> tuple[dict | None, list[str]]:
        lines, self.lines = self.lines, []
        return self.position, lines


def epoch_line(entry: dict, epochs: int) -> str:
    """`epoch 1/2: train loss 0.6961, eval_accuracy 0.5000, eval_loss 0.6909, 46 samples/s, 31 s`."""
    evals = ", ".join(f"{name} {value:.4f}" for name, value in entry.items()  # (eval_n: a count, in the report)
                      if name.startswith("eval_") and not name.endswith("_n") and isinstance(value, (int, float)))
    return (f"epoch {entry['epoch']}/{epochs}: train loss {entry['train_loss']:.4f}"
            f"{', ' + evals if evals else ''}, {entry['train_samples_per_s']:,.0f} samples/s, "
            f"{entry['epoch_seconds']:.0f} s")


@contextmanager
def training_bar(board, what: str, total_steps: int | None, every_s: float = 1.0):
    """The driver's bar over all optimizer steps of the run (a resumed run starts where it was), fed from
    `board` while `fit()` blocks; epoch lines are printed above it as each epoch ends."""
    import ray

    from pipelines.console import Progress

    bar = Progress(what, total_steps, "steps")
    stop = threading.Event()

    def drain() -> None:
        position, lines = ray.get(board.take.remote(), timeout=30)
        for line in lines:
            bar.write(line)
        if position:
            bar.update(position["global_step"], f"epoch {position['epoch']}, loss {position['loss']:.4f}, "
                                                 f"{position['samples_per_s']:,.0f} samples/s")

    def poll() -> None:
        while not stop.wait(every_s):
            try:
                drain()
            except Exception:  # noqa: BLE001 - a slow or restarting board only delays the bar
                continue

    thread = threading.Thread(target=poll, name="kobert-train-bar", daemon=True)
    thread.start()
    finished = False
    try:
        yield
        finished = True
    finally:
        stop.set()
        thread.join(timeout=10)
        try:
            drain()  # the last epoch's line
        except Exception:  # noqa: BLE001
            pass
        if finished and total_steps:
            bar.update(total_steps, bar.postfix)
        bar.close()
