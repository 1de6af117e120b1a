"""A real Ray head on 127.0.0.1 for submission tests: `ray start --head --block` in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).with_name("ray"))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture(scope="session")
def loopback_env() -> dict[str, str]:
    # Ray resolves 127.0.0.1 to the machine's outward address unless cluster mode is off; off keeps every
    # Ray port of the test head on loopback.
    # The venv's bin first on PATH, as `kobert` is on a cluster image's PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PATH": path}


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory, loopback_env):
    """Address of a job API served by a fresh one-CPU Ray head on 127.0.0.1."""
    gcs, dashboard, agent_http, agent_grpc, runtime_env, metrics, client = free_ports(7)
    temp_dir = tmp_path_factory.mktemp("ray-head")
    log = open(temp_dir / "ray-start.log", "w")
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
         f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
         f"--ray-client-server-port={client}", "--num-cpus=1", "--include-dashboard=true",
         f"--temp-dir={temp_dir}"],
        stdout=log, stderr=subprocess.STDOUT, env=loopback_env, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", dashboard), timeout=1).close()
            break
        except OSError:
            if head.poll() is not None:
                raise RuntimeError(f"ray start exited: {(temp_dir / 'ray-start.log').read_text()[-2000:]}")
            time.sleep(1)
    else:
        raise RuntimeError("the Ray head's job API did not come up within 90 s")
    yield address
    # Ray's daemons outlive `ray start`; they share its process group, so end the whole group.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            break
        time.sleep(3)
    log.close()
