"""`kobert submit` against a real Ray head on 127.0.0.1, through the job API, as a `ray job submit` user
expects it: logs as they come, the job's exit status, Ctrl-C that leaves or stops the job, one clear line
for a mistake."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

KOBERT = str(Path(sys.executable).with_name("kobert"))

pytestmark = pytest.mark.ray


def submit(address: str, env: dict, *command: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([KOBERT, "submit", "--address", address, *options, "--", *command],
                          capture_output=True, text=True, timeout=300, env=env)


def python_job(code: str) -> list[str]:
    return [sys.executable, "-u", "-c", code]


class Running:
    """A `kobert submit` still running, its stdout read line by line as it comes (with arrival times)."""

    def __init__(self, argv: list[str], env: dict):
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line))

    def wait_for(self, text: str, timeout: float = 120) -> float:
        """When a stdout line containing `text` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                arrived, line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if text in line:
                return arrived
        raise AssertionError(f"no line with {text!r} within {timeout} s; stderr: {self.stderr_if_done()}")

    def stderr_if_done(self) -> str:
        return self.process.stderr.read() if self.process.poll() is not None else "(still running)"

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        return code, self.process.stderr.read()


def job_status(address: str, env: dict, job_id: str, wanted: str | None = None, timeout: float = 60) -> str:
    """The job's status as the job API reports it (once, or once it is `wanted`), asked from a fresh process:
    Ray reads its token mode once per process."""
    code = ("import sys, time; from cluster.job_api import connect; client = connect(sys.argv[1]); "
            "deadline = time.monotonic() + float(sys.argv[4])\n"
            "while (status := client.get_job_status(sys.argv[2]).value) != sys.argv[3] "
            "and time.monotonic() < deadline: time.sleep(0.5)\n"
            "print(status)")
    done = subprocess.run([sys.executable, "-c", code, address, job_id, wanted or "", str(timeout if wanted else 0)],
                          capture_output=True, text=True, timeout=timeout + 60, env=env,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_job_runs_on_the_cluster_and_writes_a_model(ray_head, loopback_env, tmp_path, tokenizer_dir):
    output = tmp_path / "tiny"
    done = submit(ray_head, loopback_env, "kobert", "init-model", "--preset", "tiny",
                  "--tokenizer", str(tokenizer_dir), "--output", str(output))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stderr
    assert "wrote tiny classifier" in done.stdout  # the job's own log, streamed back
    assert (output / "model.safetensors").exists()


def test_job_driver_joins_this_cluster(ray_head, loopback_env):
    # The head has exactly one CPU: a driver that started a new local Ray would see the machine's cores.
    code = "import ray; ray.init(); print('CPUS', ray.cluster_resources()['CPU'])"
    done = submit(ray_head, loopback_env, sys.executable, "-c", code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CPUS 1.0" in done.stdout


def test_logs_stream_while_the_job_runs_and_its_exit_status_becomes_the_commands(ray_head, loopback_env):
    job = python_job("import sys, time; print('first', flush=True); time.sleep(4); print('second'); sys.exit(3)")
    running = Running([KOBERT, "submit", "--address", ray_head, "--", *job], loopback_env)
    first = running.wait_for("first")
    second = running.wait_for("second")
    code, stderr = running.finish()
    assert second - first > 2.5, "the first line came only with the job's end"
    assert code == 3, stderr
    assert "FAILED with exit code 3" in stderr


# What the running driver sees reserved on the one-CPU head besides itself: the entrypoint's CPU and memory
# (the cluster's view catches up within a moment, hence the few tries).
RESERVED_BY_THE_DRIVER = """
import os, time
import ray
print('GREETING', os.environ['GREETING'])
ray.init()
for _ in range(20):
    total, free = ray.cluster_resources(), ray.available_resources()
    cpu = total['CPU'] - free.get('CPU', 0)
    mib = round((total['memory'] - free.get('memory', 0)) / 2**20)
    if cpu and mib:
        break
    time.sleep(0.5)
print('RESERVED CPU', cpu, 'MiB', mib)
"""


def test_runtime_env_file_working_dir_and_entrypoint_resources(ray_head, loopback_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "show.py").write_text(RESERVED_BY_THE_DRIVER)
    env_file = tmp_path / "env.yaml"
    env_file.write_text("env_vars:\n  GREETING: annyeong\n")
    submission_id = f"resources-{uuid.uuid4().hex[:8]}"
    done = submit(ray_head, loopback_env, "python", "show.py",
                  options=("--working-dir", str(work), "--runtime-env", str(env_file),
                           "--submission-id", submission_id, "--entrypoint-num-cpus", "1",
                           "--entrypoint-memory", "64MiB"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GREETING annyeong" in done.stdout  # ran in the shipped working dir, with the file's env_vars
    assert "RESERVED CPU 1.0 MiB 64" in done.stdout, done.stdout


def test_a_duplicate_submission_id_is_one_line_and_exit_2(ray_head, loopback_env):
    submission_id = f"dup-{uuid.uuid4().hex[:8]}"
    first = submit(ray_head, loopback_env, *python_job("print('once')"),
                   options=("--submission-id", submission_id, "--no-wait"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.strip() == submission_id
    again = submit(ray_head, loopback_env, *python_job("print('twice')"), options=("--submission-id", submission_id))
    assert again.returncode == 2
    assert "twice" not in again.stdout
    [line] = again.stderr.strip().splitlines()
    assert submission_id in line and "already" in line and "--submission-id" in line, line


def test_a_refused_connection_is_one_line_and_exit_2(loopback_env):
    from tests.cluster.conftest import free_ports

    [port] = free_ports(1)  # nothing listens there
    done = submit(f"http://127.0.0.1:{port}", loopback_env, "kobert", "--help")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert f"127.0.0.1:{port}" in line and "--address" in line, line


def test_the_address_given_wins_over_an_exported_ray_address(ray_head, loopback_env):
    """Ray's job client takes RAY_API_SERVER_ADDRESS, else RAY_ADDRESS, over the address it is handed: with another
    cluster's address exported, `--address` went there (here a port nothing listens on: refused), while the
    command said it submitted to the one given."""
    from tests.cluster.conftest import free_ports

    [other, api_server] = free_ports(2)
    env = {**loopback_env, "RAY_ADDRESS": f"http://127.0.0.1:{other}",
           "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{api_server}"}
    done = submit(ray_head, env, *python_job("print('ran on the head given')"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ran on the head given" in done.stdout and ray_head in done.stderr


def test_ctrl_c_leaves_the_job_running_and_says_how_to_stop_it(ray_head, loopback_env):
    submission_id = f"left-{uuid.uuid4().hex[:8]}"
    running = Running([KOBERT, "submit", "--address", ray_head, "--submission-id", submission_id, "--",
                       *python_job("import time; print('started', flush=True); time.sleep(300)")], loopback_env)
    running.wait_for("started")
    running.process.send_signal(signal.SIGINT)
    code, stderr = running.finish()
    assert code == 130
    assert "Traceback" not in stderr
    assert f"kobert submit --address {ray_head} --stop {submission_id}" in stderr
    assert job_status(ray_head, loopback_env, submission_id) == "RUNNING"

    stopped = subprocess.run([KOBERT, "submit", "--address", ray_head, "--stop", submission_id],
                             capture_output=True, text=True, timeout=120, env=loopback_env)
    assert stopped.returncode == 0, stopped.stderr
    assert job_status(ray_head, loopback_env, submission_id) == "STOPPED"


def test_sigterm_with_stop_on_interrupt_stops_the_job(ray_head, loopback_env):
    submission_id = f"stopped-{uuid.uuid4().hex[:8]}"
    running = Running([KOBERT, "submit", "--address", ray_head, "--submission-id", submission_id,
                       "--stop-on-interrupt", "--",
                       *python_job("import time; print('started', flush=True); time.sleep(300)")], loopback_env)
    running.wait_for("started")
    running.process.send_signal(signal.SIGTERM)  # as Kubernetes ends a CronJob's pod at its deadline
    code, stderr = running.finish()
    assert code == 130, stderr
    assert "stopping job" in stderr
    assert job_status(ray_head, loopback_env, submission_id, wanted="STOPPED") == "STOPPED"


def test_timeout_stops_the_job_and_exits_124(ray_head, loopback_env):
    # what bounds the hourly CronJob's run (cluster/kuberay/cronjob-incremental-label.yaml)
    submission_id = f"timeout-{uuid.uuid4().hex[:8]}"
    done = submit(ray_head, loopback_env, *python_job("import time; print('started', flush=True); time.sleep(300)"),
                  options=("--submission-id", submission_id, "--timeout-s", "5"))
    assert done.returncode == 124, done.stdout + done.stderr
    assert "--timeout-s" in done.stderr
    assert job_status(ray_head, loopback_env, submission_id) == "STOPPED"


def test_missing_address_is_a_clear_error(loopback_env):
    env = {k: v for k, v in loopback_env.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([KOBERT, "submit", "--", "kobert", "--help"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 2
    assert "--address" in done.stderr
