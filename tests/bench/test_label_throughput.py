"""bench/label_throughput.py's `timed`: the wall time is the process's, start to exit.

Its memory poller sleeps a second between rounds; the wall used to be read after joining it, so every figure
was rounded up to the poller's next round (a 0.3 s process read 1.0 s, a 1.2 s one 2.0 s): up to a second
added to each `kobert label` run and to the baseline alike, which shrank the speed-ups of the short runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from label_throughput import timed  # noqa: E402


def test_the_wall_time_is_the_processes_not_the_memory_pollers():
    for seconds in (0.3, 1.2):
        wall = timed(["sleep", str(seconds)])["wall_s"]
        assert seconds <= wall < seconds + 0.3, (seconds, wall)
