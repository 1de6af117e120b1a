"""The output lease: of runs started at once exactly one holds it (locally and on S3, by the storage's
exclusive create), it is renewed while its run lives, taken over only once dead or expired, and released only
by its owner; two `kobert label --incremental` processes started together label every row exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from pipelines.errors import UserError
from pipelines.label.lease import Lease, LeaseLostError, current, lease_path, process_space
from tests.pipelines.label.helpers import KOBERT, assert_exactly_once, files_of


def local(tmp_path):
    import fsspec

    return fsspec.filesystem("file"), str(tmp_path / "labels")


@pytest.fixture
def s3(monkeypatch, s3_env):
    import s3fs

    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = f"lease-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    return fs, f"{bucket}/labels"


def race(fs, root, runs: int = 8) -> list:
    """`runs` threads acquire at the same instant; returns what each got (a Lease or the UserError)."""
    barrier, results = threading.Barrier(runs), [None] * runs

    def attempt(index):
        barrier.wait()
        try:
            results[index] = Lease.acquire(fs, root, f"run-{index}", ttl_s=60)
        except UserError as error:
            results[index] = error

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("store, rounds", [("local", 40), ("s3", 3)])
def test_of_runs_started_at_once_exactly_one_holds_the_lease(store, rounds, tmp_path, request):
    """Many rounds locally: a lease file created empty and filled after was read half-written by a loser about
    once in six races, which then named run `?` (the clean-clone CI failure of stop 18)."""
    for attempt in range(rounds):
        if store == "local":
            fs, root = local(tmp_path / str(attempt))
        else:
            fs, root = request.getfixturevalue("s3")
            root = f"{root}/{attempt}"
        results = race(fs, root)
        holders = [r for r in results if isinstance(r, Lease)]
        assert len(holders) == 1, results
        losers = [str(r) for r in results if r is not holders[0]]
        assert all("is held by run " + holders[0].run_id + " " in line for line in losers), (attempt, losers)
        holders[0].release()
        assert current(fs, root) == (0, None)
    later = Lease.acquire(fs, root, "later")  # a released lease is free again
    later.release()


def holder(**overrides) -> dict:
    return {"run_id": "other", "host": "elsewhere", "pid": 1, "process_space": "elsewhere/x/1",
            "since": time.time(), "expires": time.time() + 600, **overrides}


def test_a_live_lease_of_another_machine_is_respected_until_it_expires(tmp_path):
    fs, root = local(tmp_path)
    fs.makedirs(root)
    fs.pipe_file(lease_path(root, 3), json.dumps(holder()).encode())
    with pytest.raises(UserError, match="_LOCK.00000003 is held by run other .* wait for it to finish"):
        Lease.acquire(fs, root, "mine")
    fs.pipe_file(lease_path(root, 3), json.dumps(holder(expires=time.time() - 1)).encode())
    lease = Lease.acquire(fs, root, "mine")
    assert lease.generation == 4 and not fs.exists(lease_path(root, 3))  # taken over, the dead one cleared
    lease.release()


def test_a_dead_process_here_frees_the_lease_at_once_but_a_namesake_host_does_not(tmp_path):
    fs, root = local(tmp_path)
    fs.makedirs(root)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    # same hostname, another pid namespace (a container sharing the hostname): the pid says nothing
    fs.pipe_file(lease_path(root, 1), json.dumps(holder(host=socket.gethostname(), pid=int(dead.stdout),
                                                        process_space="other-container")).encode())
    with pytest.raises(UserError, match="held by run other"):
        Lease.acquire(fs, root, "mine")
    fs.pipe_file(lease_path(root, 1), json.dumps(holder(host=socket.gethostname(), pid=int(dead.stdout),
                                                        process_space=process_space())).encode())
    Lease.acquire(fs, root, "mine").release()


def test_a_lease_is_renewed_while_its_run_lives_and_a_stalled_owner_learns_it_lost(tmp_path):
    fs, root = local(tmp_path)
    lease = Lease.acquire(fs, root, "mine", ttl_s=2)
    first = json.loads(fs.cat_file(lease.path))["expires"]
    time.sleep(3)  # past the first expiry: renewed every 0.5 s meanwhile
    assert json.loads(fs.cat_file(lease.path))["expires"] > first
    with pytest.raises(UserError, match="held by run mine"):
        Lease.acquire(fs, root, "other")
    lease._stop.set()  # the owner stalls: no more renewals
    lease._thread.join()
    time.sleep(2.5)
    taker = Lease.acquire(fs, root, "taker")
    with pytest.raises(LeaseLostError, match="run mine lost its lease .* to taker"):
        lease.confirm()
    lease.release()  # not the owner any more: the taker's lease stays
    assert current(fs, root)[1]["run_id"] == "taker"
    taker.release()


def test_two_incremental_runs_started_together_label_every_row_exactly_once(tiny_model_dir, messy_input,
                                                                           tmp_path):
    output = tmp_path / "labels"
    command = [*KOBERT, "label", "--model", str(tiny_model_dir), "--input", str(messy_input), "--output",
               str(output), "--text-column", "text", "--id-column", "review_id", "--engine", "local",
               "--threads-per-actor", "1", "--incremental", "--no-progress"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RAY_ADDRESS", None)
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for _ in range(2)]
    results = [(run.wait(timeout=300), run.stdout.read(), run.stderr.read()) for run in runs]
    assert sorted(code for code, _, _ in results) in ([0, 0], [0, 2]), results
    for code, stdout, stderr in results:
        if code == 2:
            assert "is held by run" in stdout + stderr and "Traceback" not in stderr
    assert_exactly_once(files_of(messy_input), output)
    assert not list(output.glob("_LOCK*"))
