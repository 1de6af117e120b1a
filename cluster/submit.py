"""`kobert submit`: run any `kobert` command as a Ray job on a cluster, through the Ray job API.

    kobert submit --address http://HEAD:8265 -- kobert label --model s3://.../model --input s3://... --output s3://...

The same as `ray job submit`, with what this project needs around it: the job's exit status becomes this
command's, logs stream while it runs, a `submission_id` makes cron re-runs idempotent, and token
authentication (on by default since Ray 2.60's `ray start`) is switched on in the client when a token exists.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.args import add_dataclass_arguments, dataclass_from_args

HELP = "submit a kobert command as a Ray job to a cluster (job API), stream its logs, return its exit status"
TOKEN_PATH = Path.home() / ".ray" / "auth_token"


@dataclass
class SubmitConfig:
    """Where and how to submit."""

    address: str | None = field(default=None, metadata={"help": "Ray dashboard/job API address, e.g. http://127.0.0.1:8265 (default: $RAY_ADDRESS)"})
    working_dir: str | None = field(default=None, metadata={"help": "ship this directory to the job (runtime_env working_dir); omit when the cluster image has kobert-pipeline installed"})
    pip: list[str] = field(default_factory=list, metadata={"help": "extra pip packages for the job's runtime_env, comma-separated"})
    env: list[str] = field(default_factory=list, metadata={"help": "environment variables for the job, comma-separated KEY=VALUE"})
    submission_id: str | None = field(default=None, metadata={"help": "job id; a second submit with the same id is refused, so cron re-runs cannot double-run"})
    entrypoint_num_gpus: float = field(default=0.0, metadata={"help": "GPUs reserved for the job's driver"})
    wait: bool = field(default=True, metadata={"help": "wait for the job, stream its logs and exit with its status"})
    timeout_s: float = field(default=0.0, metadata={"help": "stop the job after this many seconds (0: no limit)"})

    def __post_init__(self) -> None:
        self.address = self.address or os.environ.get("RAY_ADDRESS")
        if not self.address:
            raise ValueError("no cluster address: pass --address http://HEAD:8265 or set RAY_ADDRESS")
        for item in self.env:
            if "=" not in item:
                raise ValueError(f"--env takes KEY=VALUE, got {item!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, SubmitConfig, "submission")
    parser.add_argument("entrypoint", nargs=argparse.REMAINDER,
                        help="the command to run on the cluster, after `--` (e.g. -- kobert label ...)")


def run(args: argparse.Namespace) -> int:
    config = dataclass_from_args(SubmitConfig, args)
    command = [word for word in args.entrypoint if word != "--"] if args.entrypoint[:1] == ["--"] else args.entrypoint
    if not command:
        raise ValueError("nothing to run: put the command after `--`, e.g. kobert submit -- kobert label ...")
    return submit(config, command)


def enable_token_auth_if_available() -> None:
    """Ray 2.60 clusters started with `ray start` require a token; the client only sends it in token mode."""
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or TOKEN_PATH.exists()):
        os.environ["RAY_AUTH_MODE"] = "token"


def runtime_env(config: SubmitConfig) -> dict:
    env: dict = {}
    if config.working_dir:
        env["working_dir"] = config.working_dir
        env["excludes"] = [".venv", ".git", "artifacts", "runs", "**/__pycache__", "*.safetensors"]
    if config.pip:
        env["pip"] = config.pip
    if config.env:
        env["env_vars"] = dict(item.split("=", 1) for item in config.env)
    return env


def submit(config: SubmitConfig, command: list[str]) -> int:
    enable_token_auth_if_available()
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(config.address)
    job_id = submit_when_ready(
        client,
        entrypoint=shlex.join(command),
        submission_id=config.submission_id,
        runtime_env=runtime_env(config) or None,
        entrypoint_num_gpus=config.entrypoint_num_gpus or None,
        metadata={"submitted_by": "kobert submit"},
    )
    print(f"submitted {job_id} to {config.address}: {shlex.join(command)}", file=sys.stderr)
    if not config.wait:
        print(job_id)
        return 0
    started = time.monotonic()
    printed = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        sys.stdout.write(logs[printed:])
        sys.stdout.flush()
        printed = len(logs)
        if status.is_terminal():
            break
        if config.timeout_s and time.monotonic() - started > config.timeout_s:
            client.stop_job(job_id)
            print(f"job {job_id} stopped after {config.timeout_s:.0f}s", file=sys.stderr)
            return 124
        time.sleep(1.0)
    print(f"job {job_id} {status.value}", file=sys.stderr)
    return 0 if status == JobStatus.SUCCEEDED else 1


def submit_when_ready(client, attempts: int = 30, **job) -> str:
    """Submit, retrying while a freshly started head has no job agent yet (it answers HTTP 500 for a while)."""
    for attempt in range(attempts):
        try:
            return client.submit_job(**job)
        except RuntimeError as error:
            if "No available agent" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(2.0)
    raise AssertionError("unreachable")
