"""A Ray that a `kobert` command starts itself listens on loopback only (issue 13): its GCS, raylet and agents
on 127.0.0.1, not on every interface or the machine's outward address."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ray

# What `kobert` does before a subcommand imports Ray, then a local Ray as `kobert train`/`label` start it;
# prints the addresses that Ray's processes (this process's children) listen on.
PROGRAM = """
import sys
from pipelines.cli import own_ray_on_loopback
if sys.argv[1] == "kobert":
    own_ray_on_loopback()
import ray
import psutil  # Ray's own copy (ray/thirdparty_files), on the path once ray is imported
ray.init(address="local", num_cpus=1, include_dashboard=False)
children = psutil.Process().children(recursive=True)
listening = set()
for child in children:
    try:
        listening.update(c.laddr.ip for c in child.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN)
    except psutil.Error:
        pass
print(sorted(listening))
ray.shutdown()
"""


def listening_addresses(mode: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, env=env,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return eval(done.stdout.strip().splitlines()[-1])


def test_the_commands_own_ray_listens_on_loopback_only():
    addresses = listening_addresses("kobert")
    assert addresses and all(a in ("127.0.0.1", "::ffff:127.0.0.1") for a in addresses), addresses
