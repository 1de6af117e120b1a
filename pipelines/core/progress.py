"""Progress lines during an epoch: a pretraining epoch over 600k reviews takes half an hour on a laptop,
and one line at its end is not enough to know whether to wait, or how long."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class EpochProgress:
    """Logs (on rank 0 only) every `every_s` seconds: steps done of those expected, samples/s over all
    ranks, mean loss since the last line, and the time left at the current rate.

    Args:
        epoch: the epoch's number, for the line.
        expected_steps: optimizer steps this epoch should take (`pipelines.core.data.steps_per_epoch`); None when unknown (no ETA then).
        world_size: ranks stepping in lockstep; samples/s counts all of them.
        enabled: False on every rank but 0.
    """

    def __init__(self, epoch: int, expected_steps: int | None, world_size: int, enabled: bool,
                 every_s: float = 30.0) -> None:
        self.epoch, self.expected_steps, self.world_size = epoch, expected_steps, world_size
        self.enabled, self.every_s = enabled, every_s
        self.started = self.last = time.perf_counter()
        self.losses: list[float] = []
        self.lines = 0

    def step(self, steps: int, rows: int, loss) -> None:
        """After each optimizer step: this rank's steps and rows so far, this step's loss (a float, or a
        0-d tensor still on the device: it is read only when a line is printed, not every step)."""
        if not self.enabled:
            return
        self.losses.append(loss)
        now = time.perf_counter()
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
