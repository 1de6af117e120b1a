"""Progress lines during an epoch: rank 0 only, rate over all ranks, ETA from the expected steps."""

import logging

from pipelines.core import progress as progress_module
from pipelines.core.progress import EpochProgress


def test_lines_every_interval_on_rank_zero_only(monkeypatch, caplog):
    hidden = EpochProgress(epoch=1, expected_steps=10, world_size=2, enabled=False, every_s=15)
    clock = iter(range(0, 1000, 10))  # every call to the clock advances 10 s
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    caplog.set_level(logging.INFO, logger=progress_module.__name__)
    shown = EpochProgress(epoch=1, expected_steps=10, world_size=2, enabled=True, every_s=15)
    for step in range(1, 6):
        shown.step(step, step * 32, loss=1.0 / step)
        hidden.step(step, step * 32, loss=1.0)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == shown.lines == 2 and hidden.lines == 0
    # second line: step 4 at t=40 s of the epoch, 4*32 rows per rank × 2 ranks = 6.4 samples/s, 6 steps left
    assert lines[1].startswith("epoch 1: step 4/10, 6 samples/s, loss 0.2917") and "about 60 s left" in lines[1]
