"""Ray settings for the Ray a kobert command starts for itself on one machine.

Ray Data 2.60 reads Parquet footers through a pool of `FooterReader` actors, 32 by default (the
`RAY_DATA_PARQUET_FOOTER_NUM_ACTORS` default), each a Python process of its own, for every `read_parquet`,
however few files it names. On a 2-core laptop those start-ups were most of a small command's time: a
2-step `kobert train` on 400 reviews started 34 worker processes and kept the cores busy for 127 s (80 s wall);
with 2 footer readers it started 19 and took 96 core-seconds (70 s wall), measured on an EPYC Zen 3, 2 cores.
Ray Train 2.60 also starts a `PreemptionWatcher` actor per training run (about 2.6 busy core-seconds to
start, measured on the same CPU) to poll for nodes a cloud is draining; a one-machine Ray has no such node.
A Ray joined through `RAY_ADDRESS` keeps its own settings, and so does a user's own environment variable.
"""

from __future__ import annotations

import os

FOOTER_READERS = "2"


def for_own_ray() -> None:
    """Before `ray.init` of a Ray this command starts: its raylet and workers inherit this environment."""
    os.environ.setdefault("RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", FOOTER_READERS)
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
