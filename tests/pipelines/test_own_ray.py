"""Ray that belongs to the command (issue 13), tried with the real `kobert` command against a real local Ray:

- another Ray already runs on the machine (`ray start --head`, whose address file `ray.init()` without an
  address would join): `kobert train` and `kobert label --engine ray` start and use their own Ray, never it;
- every listening socket of the Ray processes a running `kobert label` started is on 127.0.0.1;
- a labeling driver SIGKILLed mid-run, then the same command again: the output is complete and exactly once,
  and no process of the killed command's Ray outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.ray_defaults import free_loopback_port
from tests.pipelines.label.helpers import KOBERT, assert_exactly_once

pytestmark = pytest.mark.ray

ENV = {"RAY_DEDUP_LOGS": "0", "TOKENIZERS_PARALLELISM": "false"}
RAY = str(Path(sys.executable).parent / "ray")


def command_env() -> dict[str, str]:
    """The environment a user's shell gives `kobert`: no RAY_ADDRESS, nothing about loopback set."""
    environment = {**os.environ, **ENV}
    for name in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        environment.pop(name, None)
    return environment


def address_file() -> Path:
    """Where `ray start --head` records its address and where `ray.init()` without one looks."""
    return Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"


@pytest.fixture(scope="module")
def stranger_ray(tmp_path_factory):
    """A Ray someone else started on this machine (loopback, one CPU), the latest `ray.init()` would find.

    It runs in its own process group (`--block`), which the fixture ends; the address file it wrote is removed
    if it still names it, so that no later test finds a dead cluster there.
    """
    port, log = free_loopback_port(), tmp_path_factory.mktemp("stranger") / "ray-start.log"
    before = address_file().read_text() if address_file().exists() else None
    process = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
         "--include-dashboard", "false", "--disable-usage-stats"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**command_env(), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while not (address_file().exists() and address_file().read_text().strip() == address):
            assert process.poll() is None, f"ray start --head exited: {log.read_text()[-3000:]}"
            assert time.time() < deadline, "ray start --head never wrote its address file"
            time.sleep(0.5)
        yield address
    finally:  # SIGKILL: on SIGTERM `ray start --block` drains for 30 s first
        end_group(process.pid)
        process.wait(timeout=30)
        if address_file().exists() and address_file().read_text().strip() == address:
            if before is None:
                address_file().unlink()
            else:
                address_file().write_text(before)


def end_group(pgid: int) -> None:
    """SIGKILL whatever is left of a process group this test started."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def write_reviews(nsmc_path: Path, path: Path, rows: int) -> Path:
    """The first `rows` real reviews, all columns."""
    pq.write_table(pq.read_table(nsmc_path).slice(0, rows), path)
    return path


def label_command(model: Path, source: Path, output: Path, *extra: str) -> list[str]:
    return [*KOBERT, "label", "--model", str(model), "--input", str(source), "--output", str(output),
            "--engine", "ray", "--threads-per-actor", "1", "--no-progress", *extra]


def test_kobert_never_joins_a_ray_someone_else_started(stranger_ray, nsmc_path, tmp_path):
    """`ray.init()` without an address joins the cluster in the address file; with num_cpus given that is
    "When connecting to an existing cluster, num_cpus and num_gpus must not be provided" (a 44-minute recipe
    died of it in its fine-tuning stage). The command must start its own Ray and leave the stranger's address
    file as it was. (`kobert label --engine ray` runs beside the same stranger in the next test.)"""
    data = tmp_path / "nsmc.parquet"
    rows = [row for row in pq.read_table(nsmc_path, columns=["text", "rating"]).slice(0, 500).to_pylist()
            if row["text"] and row["text"].strip()][:400]
    pq.write_table(pa.table({"text": [row["text"] for row in rows],
                             "label": [int(row["rating"] >= 6) for row in rows]}), data)
    done = subprocess.run(
        [*KOBERT, "train", "--model", "tiny", "--num-workers", "1", "--max-length", "32", "--batch-size", "32",
         "--epochs", "1", "--max-steps-per-epoch", "2", "--train", str(data), "--eval", str(data),
         "--output", str(tmp_path / "run")], capture_output=True, text=True, timeout=300, env=command_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").exists()

    assert address_file().read_text().strip() == stranger_ray  # the stranger's cluster is still the one on record


# Run by the test below in a process of its own, as `kobert train` runs: the Ray of `ray_session`, then Ray's state
# API asked, from inside that Ray, about one of its actors (what Ray Train's PlacementGroupCleaner asks about the
# run's controller: a controller it cannot find is taken for dead and its placement group removed).
STATE_PROBE = """
import json, sys, ray
from pipelines.core.config import ClusterConfig
from pipelines.core.driver import ray_session

@ray.remote(num_cpus=0)
class Marker:
    def ready(self):
        return True

@ray.remote(num_cpus=0)
def state_of(actor_id):
    from ray.util.state import get_actor
    try:
        found = get_actor(actor_id, timeout=5)
        return found.state if found else "not found"
    except Exception as error:
        return f"{type(error).__name__}: {str(error)[:300]}"

with ray_session(ClusterConfig(output=sys.argv[1], num_workers=1)):
    marker = Marker.remote()
    ray.get(marker.ready.remote())
    print(json.dumps(ray.get(state_of.remote(marker._actor_id.hex()), timeout=150)))
"""


def test_rays_state_api_inside_the_commands_own_ray_asks_that_ray_not_the_strangers(stranger_ray, tmp_path):
    """Ray 2.60's state API finds its cluster through RAY_ADDRESS, else the address file `ray start` writes: inside
    a command's own Ray it asked the stranger (or, once the stranger was gone, a dead address for 40 s a call).
    Ray Train's PlacementGroupCleaner asks it whether the run's controller still lives: beside a stranger it found
    no such actor and exited, taking the controller for dead (had the run's placement group been registered by
    then, it would have removed it); beside a dead address it held every fit's end for 12 s."""
    done = subprocess.run([sys.executable, "-c", STATE_PROBE, str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=300, env=command_env(), cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == '"ALIVE"', done.stdout[-2000:]
    assert address_file().read_text().strip() == stranger_ray


def tree(pid: int) -> list:
    import psutil  # Ray's own copy (ray/thirdparty_files), on the path once ray is imported

    try:
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def listening(processes) -> set[str]:
    import psutil

    addresses = set()
    for process in processes:
        try:
            addresses.update(c.laddr.ip for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN)
        except psutil.Error:
            pass
    return addresses


def test_a_labeling_driver_killed_mid_run_then_run_again_labels_every_row_once(stranger_ray, tiny_model_dir,
                                                                                nsmc_path, tmp_path):
    """SIGKILL, not a signal the driver could handle: no cleanup runs. While it labels (beside the stranger's
    Ray, which it must not join), every socket its Ray listens on is loopback; once it is killed, its Ray goes
    with it; the same command again completes."""
    import ray  # noqa: F401  (puts Ray's psutil on the path)

    source = write_reviews(nsmc_path, tmp_path / "reviews.parquet", 4000)
    output = tmp_path / "labels"
    command = label_command(tiny_model_dir, source, output, "--batch-size", "100", "--rows-per-file", "100")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=command_env(), start_new_session=True)
    processes = []
    try:
        deadline = time.time() + 240
        while not list((output / "_staging").rglob("*.parquet")):  # labeled rows written, not committed
            assert process.poll() is None, process.communicate()
            assert time.time() < deadline, "no labeled file was written"
            time.sleep(0.2)
        processes = tree(process.pid)
        addresses = listening(processes)
        assert addresses and addresses <= {"127.0.0.1", "::ffff:127.0.0.1"}, addresses
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        assert not (output / "_SUCCESS").exists()  # killed before its commit
        deadline = time.time() + 60
        while survivors := [p for p in processes if alive(p)]:
            assert time.time() < deadline, f"the killed command's Ray outlived it: {survivors}"
            time.sleep(0.5)
    finally:
        end_group(process.pid)
        for leftover in filter(alive, processes):  # ours to end, whatever group Ray put them in
            leftover.kill()

    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=command_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert_exactly_once([source], output)  # every one of the 4,000 rows labeled or rejected, once
    assert not (output / "_staging").exists()
    assert address_file().read_text().strip() == stranger_ray
