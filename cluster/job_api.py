"""The Ray job API as `kobert submit` uses it: connect, submit, follow the logs, read the exit status, stop.

Ray's `JobSubmissionClient` reports a refused connection, a taken submission id or a bad token as a bare
`ConnectionError`/`RuntimeError` carrying the HTTP body; the ones a user can fix become one-line
`UserError`s here (exit 2, no traceback), each naming the address or id and what to do.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipelines.errors import UserError

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobStatus, JobSubmissionClient

TOKEN_PATH = Path.home() / ".ray" / "auth_token"


def enable_token_auth_if_available() -> None:
    """Ray 2.60 clusters started with `ray start` require a token; the client only sends it in token mode."""
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or TOKEN_PATH.exists()):
        os.environ["RAY_AUTH_MODE"] = "token"


# Ray's job client takes these over the address it is handed (`get_address_for_submission_client` in
# ray/dashboard/utils.py, Ray 2.60): `--address` would lose, without a word, to another cluster's exported address.
ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


@contextmanager
def environment_without(names: tuple[str, ...]):
    """This process's environment without `names` for the duration, then as it was."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def connect(address: str) -> "JobSubmissionClient":
    """A client for the job API at `address`, whatever cluster addresses the environment holds (the client keeps
    the address it resolved when built); the constructor already asks the server for its version."""
    enable_token_auth_if_available()
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        with environment_without(ADDRESS_ENV):
            return JobSubmissionClient(address)
    except ConnectionError:
        raise UserError(f"no Ray job API answers at {address} (connection refused): check --address or "
                        "RAY_ADDRESS, the head's dashboard port (8265 by default), e.g. through "
                        "`kubectl port-forward svc/kobert-head-svc 8265:8265`") from None
    except AuthenticationError:
        raise UserError(f"the Ray job API at {address} refused this client's token: set RAY_AUTH_TOKEN to the "
                        "cluster's token (cluster/README.md says where it is)") from None


def submit_when_ready(client: "JobSubmissionClient", address: str, attempts: int = 90, **job) -> str:
    """Submit, retrying for up to 3 minutes while a freshly started head has no job agent yet (it answers HTTP
    500 for a while: seen for over a minute on a busy 2-core machine)."""
    for attempt in range(attempts):
        try:
            return client.submit_job(**job)
        except RuntimeError as error:
            submission_id = job.get("submission_id")
            if submission_id and "already exists" in str(error):
                raise UserError(
                    f"a job with submission id {submission_id} already exists on {address}: pick another "
                    f"--submission-id, or follow that one with `ray job logs --address {address} --follow "
                    f"{submission_id}`") from None
            if "No available agent" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(2.0)
    raise AssertionError("unreachable")


def follow_logs(client: "JobSubmissionClient", job_id: str, timeout_s: float | None = None,
                out: TextIO = sys.stdout) -> None:
    """Print the job's logs as they come (the job API's websocket tail), until the job ends.

    A tail broken off by the network falls back to waiting for the job's end and printing what the tail had
    not printed yet. Raises TimeoutError after `timeout_s`, KeyboardInterrupt on Ctrl-C (or SIGTERM).
    """
    printed = 0

    async def tail_counting() -> None:
        nonlocal printed
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()
            printed += len(chunk)

    started = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(tail_counting(), timeout_s))
    except asyncio.TimeoutError:  # not yet the builtin TimeoutError on Python 3.10
        raise TimeoutError(f"job {job_id} still running after {timeout_s:.0f} s") from None
    except RuntimeError as error:  # the websocket closed abnormally
        print(f"kobert submit: log stream of {job_id} broke off ({error}); waiting for the job's end",
              file=sys.stderr)
        left = None if timeout_s is None else max(0.0, timeout_s - (time.monotonic() - started))
        wait_until_done(client, job_id, left)
        out.write(client.get_job_logs(job_id)[printed:])
        out.flush()


def wait_until_done(client: "JobSubmissionClient", job_id: str, timeout_s: float | None = None,
                    poll_s: float = 1.0) -> "JobStatus":
    """The job's terminal status; TimeoutError if it is still running after `timeout_s`."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not (status := client.get_job_status(job_id)).is_terminal():
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status.value} after {timeout_s:.0f} s")
        time.sleep(poll_s)
    return status


def exit_status(info: "JobDetails") -> int:
    """This command's exit status for a finished job: the driver's own where it has one.

    0 for SUCCEEDED; the entrypoint's exit code for FAILED (128 + N for a driver killed by signal N, as a
    shell reports it), 1 where the job failed before or around its entrypoint (runtime env, stopped).
    """
    from ray.job_submission import JobStatus

    if info.status == JobStatus.SUCCEEDED:
        return 0
    code = info.driver_exit_code
    if info.status == JobStatus.FAILED and code:
        return code if code > 0 else 128 - code
    return 1


def describe(info: "JobDetails") -> str:
    """One line: the job's id, status, and for a failure its exit code or the first line of Ray's reason."""
    line = f"job {info.submission_id} {info.status.value}"
    if info.driver_exit_code not in (None, 0):
        line += f" with exit code {info.driver_exit_code}"
    elif info.status.value == "FAILED" and info.message:
        line += f": {info.message.strip().splitlines()[0]}"
    return line


def stop(client: "JobSubmissionClient", address: str, job_id: str, wait_s: float = 60) -> "JobStatus":
    """Ask the job to stop and wait (up to `wait_s`) until it has; a finished job is left as it is."""
    try:
        client.stop_job(job_id)
    except RuntimeError as error:
        if "does not exist" in str(error):
            raise UserError(f"no job {job_id} on {address}: `ray job list --address {address}` lists the "
                            "jobs there") from None
        raise
    return wait_until_done(client, job_id, wait_s)
