"""cluster/job_api.py without a cluster: what a broken log stream and each way a job ends turn into."""

from __future__ import annotations

import io

import pytest
from ray.job_submission import JobDetails, JobStatus, JobType

from cluster import job_api


class BrokenTailClient:
    """A job API whose log websocket drops after the first chunk, as a flaky port-forward does."""

    def __init__(self, full_log: str, first_chunk: str):
        self.full_log, self.first_chunk = full_log, first_chunk

    async def tail_job_logs(self, job_id):
        yield self.first_chunk
        raise RuntimeError("WebSocket connection closed unexpectedly with close code 1006")

    def get_job_status(self, job_id):
        return JobStatus.SUCCEEDED

    def get_job_logs(self, job_id):
        return self.full_log


def test_a_broken_log_stream_still_prints_every_line_once(capsys):
    out = io.StringIO()
    job_api.follow_logs(BrokenTailClient("line 1\nline 2\nline 3\n", "line 1\n"), "job-1", out=out)
    assert out.getvalue() == "line 1\nline 2\nline 3\n"
    assert "broke off" in capsys.readouterr().err


def details(status: JobStatus, exit_code: int | None, message: str | None = None) -> JobDetails:
    return JobDetails(type=JobType.SUBMISSION, submission_id="job-1", entrypoint="kobert label",
                      status=status, driver_exit_code=exit_code, message=message)


@pytest.mark.parametrize("status,exit_code,expected", [
    (JobStatus.SUCCEEDED, 0, 0),
    (JobStatus.FAILED, 3, 3),
    (JobStatus.FAILED, -9, 137),  # driver killed by SIGKILL (OOM killer): as a shell reports it
    (JobStatus.FAILED, None, 1),  # e.g. its runtime_env could not be set up: no driver ever ran
    (JobStatus.STOPPED, None, 1),  # stopped by someone else: not a success
])
def test_exit_status_of_a_finished_job(status, exit_code, expected):
    assert job_api.exit_status(details(status, exit_code)) == expected


def test_a_failure_without_a_driver_says_why_in_one_line():
    info = details(JobStatus.FAILED, None, "Failed to set up runtime environment.\nTraceback ...\n")
    assert job_api.describe(info) == "job job-1 FAILED: Failed to set up runtime environment."
