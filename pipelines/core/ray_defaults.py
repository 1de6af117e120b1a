"""Which Ray a kobert command runs on (`joined_address`), and the settings of the Ray it starts for itself.

Ray Data 2.60 reads Parquet footers through a pool of `FooterReader` actors, 32 by default (the
`RAY_DATA_PARQUET_FOOTER_NUM_ACTORS` default), each a Python process of its own, for every `read_parquet`,
however few files it names. On a 2-core laptop those start-ups were most of a small command's time: a
2-step `kobert train` on 400 reviews started 34 worker processes and kept the cores busy for 127 s (80 s wall);
with 2 footer readers it started 19 and took 96 core-seconds (70 s wall), measured on an EPYC Zen 3, 2 cores.
Ray Train 2.60 also starts a `PreemptionWatcher` actor per training run (about 2.6 busy core-seconds to
start, measured on the same CPU) to poll for nodes a cloud is draining; a one-machine Ray has no such node.
A Ray joined through `RAY_ADDRESS` keeps its own settings, and so does a user's own environment variable.

Ray's state API (`ray.util.state`) does not ask the Ray its process belongs to: it finds a cluster through
`RAY_API_SERVER_ADDRESS`, else `RAY_ADDRESS`, else the address file `ray start` writes (`/tmp/ray/
ray_current_cluster`), which names somebody else's Ray or one long gone. Ray Train's `PlacementGroupCleaner` asks it
every second whether the run's controller still lives: beside another Ray it found no such actor and took the
controller for dead (removing the run's placement group, had it been registered by then); beside a dead address
each call waited 40 s for a GCS, and every fit's end waited 12 s for the cleaner (measured on an EPYC Zen 4, 2 cores:
a tiny 1-epoch `kobert train` of 240 reviews took 47.8 to 49.7 s beside a dead address file, 34.8 and 38.8 s with
the address set here, 32.5 to 36.2 s without a file either way). Ray Data's hanging-task detector asks it too, from the
executor's loop. So a command's own Ray has its state API address set before `ray.init`, which its raylet and
every worker inherit: its own dashboard where it runs one, else a loopback port nothing of Ray's listens on (calls
fail at once, which both callers expect).
"""

from __future__ import annotations

import os
import socket

from pipelines.errors import UserError
from pipelines.redact import redact

FOOTER_READERS = "2"
STATE_API_ENV = "RAY_API_SERVER_ADDRESS"


def for_own_ray() -> None:
    """Before `ray.init` of a Ray this command starts: its raylet and workers inherit this environment."""
    os.environ.setdefault("RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", FOOTER_READERS)
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")


_before: list[str | None] = []  # the values `own_state_api` replaced, for `release_state_api`


def own_state_api(dashboard: bool) -> dict:
    """Point Ray's state API at the Ray about to start (see the module docstring); returns the `ray.init` options
    that put its dashboard, if it runs one, on the port named. Set for this process and what it starts, replacing any
    earlier value (a user's cluster is not the Ray this command runs on) until `release_state_api`."""
    _before.append(os.environ.get(STATE_API_ENV))
    port = free_loopback_port()
    os.environ[STATE_API_ENV] = f"http://127.0.0.1:{port}"
    return {"include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": port} if dashboard else \
        {"include_dashboard": False}


def release_state_api() -> None:
    """After `ray.shutdown` of that Ray: the address as it was, so that nothing later in the process (a test's
    cluster, a Ray it joins) asks a Ray that is gone."""
    if not _before:
        return
    before = _before.pop()
    if before is None:
        os.environ.pop(STATE_API_ENV, None)
    else:
        os.environ[STATE_API_ENV] = before


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def joined_address() -> str | None:
    """The cluster a command joins (`RAY_ADDRESS`), None to start its own.

    An http(s) address is a job API's, what `kobert submit` and `ray job` take (the README exports one for them):
    `ray.init` refuses it with a five-line error, so it is one line here that says both ways on.
    """
    address = os.environ.get("RAY_ADDRESS") or None
    if address and address.split("://", 1)[0].lower() in ("http", "https"):
        raise UserError(f"RAY_ADDRESS is {redact(address)}, a job API address (for `kobert submit`): a command joins "
                        "a cluster at its GCS address (HEAD:6379) or ray://HEAD:10001; unset RAY_ADDRESS to run on "
                        "this machine, or run the command on that cluster with `kobert submit -- kobert ...`")
    return address
