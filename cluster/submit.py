"""`kobert submit`: run any `kobert` command as a Ray job on a cluster, through the Ray job API.

    kobert submit --address http://HEAD:8265 -- kobert label --model s3://.../model --input s3://... --output s3://...
    kobert submit --address http://HEAD:8265 --stop JOB_ID

What `ray job submit` does, with what this project needs around it: logs followed as they come (the job
API's tail), `--runtime-env FILE` and `--working-dir`, CPU/GPU/memory for the entrypoint, the job's exit
status as this command's, a `submission_id` that makes cron re-runs idempotent, Ctrl-C (or SIGTERM, as
Kubernetes ends a pod) that says how to stop the job or stops it, and token authentication (on by default
since Ray 2.60's `ray start`) switched on in the client when a token exists. A mistake (no head at the
address, a submission id already taken) is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster import job_api
from pipelines.args import add_dataclass_arguments, dataclass_from_args
from pipelines.errors import UserError
from pipelines.redact import redact

HELP = "submit a kobert command as a Ray job to a cluster (job API), stream its logs, return its exit status"
# Left out of a shipped --working-dir: local state that would only make the upload big (Ray caps it at 500 MiB).
WORKING_DIR_EXCLUDES = [".venv", ".git", "artifacts", "runs", "models", "**/__pycache__", "*.safetensors"]
INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C
TIMED_OUT = 124  # as timeout(1) reports it
MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(|B|[KMGT]B|[KMGT]i|[KMGT]iB)\s*$")
UNITS = {"": 1, "B": 1, **{f"{p}B": 1000 ** (i + 1) for i, p in enumerate("KMGT")},
         **{f"{p}i": 1024 ** (i + 1) for i, p in enumerate("KMGT")},
         **{f"{p}iB": 1024 ** (i + 1) for i, p in enumerate("KMGT")}}


@dataclass
class SubmitConfig:
    """Where and how to submit."""

    address: str | None = field(default=None, metadata={"help": "Ray dashboard/job API address, e.g. http://127.0.0.1:8265 (default: $RAY_ADDRESS)"})
    runtime_env: str | None = field(default=None, metadata={"help": "a runtime_env as a YAML or JSON file (working_dir, pip, env_vars, ...), as `ray job submit --runtime-env`"})
    working_dir: str | None = field(default=None, metadata={"help": "ship this directory to the job as its working directory (overrides the file's working_dir); omit when the cluster image has kobert-pipeline installed"})
    pip: list[str] = field(default_factory=list, metadata={"help": "extra pip packages for the job's runtime_env, comma-separated"})
    env: list[str] = field(default_factory=list, metadata={"help": "environment variables for the job, comma-separated KEY=VALUE (never credentials: they land in the job's metadata; give the cluster's pods a Secret)"})
    submission_id: str | None = field(default=None, metadata={"help": "job id; a second submit with the same id is refused, so cron re-runs cannot double-run"})
    entrypoint_num_cpus: float = field(default=0.0, metadata={"help": "CPUs reserved for the job's driver (the entrypoint), apart from its tasks and actors"})
    entrypoint_num_gpus: float = field(default=0.0, metadata={"help": "GPUs reserved for the job's driver"})
    entrypoint_memory: str | None = field(default=None, metadata={"help": "memory reserved for the job's driver, in bytes or with a unit: 512MiB, 4GiB, 2Gi"})
    wait: bool = field(default=True, metadata={"help": "wait for the job, stream its logs and exit with its status (--no-wait: print the job id and return)"})
    timeout_s: float = field(default=0.0, metadata={"help": "stop the job after this many seconds and exit 124 (0: no limit)"})
    stop_on_interrupt: bool = field(default=False, metadata={"help": "on Ctrl-C or SIGTERM, stop the job too (default: leave it running and print how to stop it)"})
    stop: str | None = field(default=None, metadata={"help": "stop the job with this submission id and wait until it has stopped, instead of submitting"})

    def __post_init__(self) -> None:
        self.address = self.address or os.environ.get("RAY_ADDRESS")
        if not self.address:
            raise UserError("no cluster address: pass --address http://HEAD:8265 or set RAY_ADDRESS")
        for item in self.env:
            if "=" not in item:
                raise UserError(f"--env takes KEY=VALUE, got {item!r}")
        if self.entrypoint_memory is not None and not MEMORY.match(self.entrypoint_memory):
            raise UserError(f"--entrypoint-memory takes bytes or a size such as 512MiB or 4GiB, "
                            f"got {self.entrypoint_memory!r}")

    @property
    def entrypoint_memory_bytes(self) -> int | None:
        if self.entrypoint_memory is None:
            return None
        number, unit = MEMORY.match(self.entrypoint_memory).groups()
        return int(float(number) * UNITS[unit])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, SubmitConfig, "submission")
    parser.add_argument("entrypoint", nargs=argparse.REMAINDER,
                        help="the command to run on the cluster, after `--` (e.g. -- kobert label ...)")


def run(args: argparse.Namespace) -> int:
    config = dataclass_from_args(SubmitConfig, args)
    command = args.entrypoint[1:] if args.entrypoint[:1] == ["--"] else args.entrypoint
    if config.stop:
        if command:
            raise UserError("--stop JOB_ID stops a job; it takes no command to run")
        return stop_job(config)
    if not command:
        raise UserError("nothing to run: put the command after `--`, e.g. kobert submit -- kobert label ...")
    return submit(config, command)


def load_runtime_env(path: str) -> dict:
    """A runtime_env from a YAML (or JSON, which YAML reads too) file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"--runtime-env file not found: {file}")
    try:
        loaded = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"--runtime-env {file} is not YAML or JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise UserError(f"--runtime-env {file} must hold a mapping (working_dir, pip, env_vars, ...)")
    return loaded


def runtime_env(config: SubmitConfig) -> dict:
    """The job's runtime_env: the file's, then --working-dir, --pip and --env on top of it."""
    env = load_runtime_env(config.runtime_env) if config.runtime_env else {}
    if config.working_dir:
        if "://" not in config.working_dir and not Path(config.working_dir).expanduser().is_dir():
            raise UserError(f"--working-dir is not a directory: {config.working_dir}")
        env["working_dir"] = config.working_dir
    if "working_dir" in env:
        env.setdefault("excludes", WORKING_DIR_EXCLUDES)
    if config.pip:
        env["pip"] = [*env.get("pip", []), *config.pip]
    if config.env:
        env["env_vars"] = {**env.get("env_vars", {}), **dict(item.split("=", 1) for item in config.env)}
    return env


def interrupt_on_sigterm() -> None:
    """Kubernetes ends a pod (a CronJob's deadline, an eviction) with SIGTERM: treat it as Ctrl-C."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


def submit(config: SubmitConfig, command: list[str]) -> int:
    client = job_api.connect(config.address)
    entrypoint = shlex.join(command)
    job_id = job_api.submit_when_ready(
        client, config.address,
        entrypoint=entrypoint,
        submission_id=config.submission_id,
        runtime_env=runtime_env(config) or None,
        entrypoint_num_cpus=config.entrypoint_num_cpus or None,
        entrypoint_num_gpus=config.entrypoint_num_gpus or None,
        entrypoint_memory=config.entrypoint_memory_bytes,
        metadata={"submitted_by": "kobert submit"},
    )
    print(redact(f"submitted {job_id} to {config.address}: {entrypoint}"), file=sys.stderr)
    if not config.wait:
        print(job_id)
        return 0
    interrupt_on_sigterm()
    try:
        job_api.follow_logs(client, job_id, timeout_s=config.timeout_s or None)
    except TimeoutError:
        job_api.stop(client, config.address, job_id)
        print(f"kobert submit: job {job_id} stopped after {config.timeout_s:.0f} s (--timeout-s)", file=sys.stderr)
        return TIMED_OUT
    except KeyboardInterrupt:
        return interrupted(client, config, job_id)
    job_api.wait_until_done(client, job_id)
    info = client.get_job_info(job_id)
    print(f"kobert submit: {job_api.describe(info)}", file=sys.stderr)
    return job_api.exit_status(info)


def interrupted(client, config: SubmitConfig, job_id: str) -> int:
    """Ctrl-C while following: stop the job (--stop-on-interrupt) or say how to, and exit 130."""
    if config.stop_on_interrupt:
        print(f"kobert submit: interrupted, stopping job {job_id}", file=sys.stderr)
        status = job_api.stop(client, config.address, job_id)
        print(f"kobert submit: job {job_id} {status.value}", file=sys.stderr)
    else:
        print(f"kobert submit: interrupted; job {job_id} keeps running on the cluster. Follow it: "
              f"ray job logs --address {config.address} --follow {job_id}; stop it: "
              f"kobert submit --address {config.address} --stop {job_id}", file=sys.stderr)
    return INTERRUPTED


def stop_job(config: SubmitConfig) -> int:
    """`kobert submit --stop ID`: stop a job (with this client's token handling) and wait until it has."""
    client = job_api.connect(config.address)
    status = job_api.stop(client, config.address, config.stop)
    print(f"kobert submit: job {config.stop} {status.value}", file=sys.stderr)
    return 0
