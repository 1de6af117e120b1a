"""A planted secret (in the environment, in an s3:// URI's query) never appears in what a run prints or
writes: its console, its logs (`kobert -v`), the manifest, the report, a submitted job's printed entrypoint."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.redact import redact
from tests.pipelines.label.helpers import KOBERT

SECRET = "planted-secret-XYZ"


def test_redact_hides_uri_queries_user_info_and_secret_environment_values():
    environ = {"AWS_SECRET_ACCESS_KEY": SECRET, "HOME": "/home/someone-long"}
    text = (f"kobert label --input 's3://b/in/?X-Amz-Signature={SECRET}' --output https://me:{SECRET}@host/x "
            f"--model s3://b/m?versionId=abc.1 key={SECRET} home=/home/someone-long")
    assert redact(text, environ) == ("kobert label --input 's3://b/in/?<redacted>' --output https://<redacted>@host/x "
                                     "--model s3://b/m?versionId=abc.1 key=<redacted> home=/home/someone-long")
    assert redact("s3://b/in/day-?.parquet", environ) == "s3://b/in/day-?.parquet"  # a glob, not a query


def test_a_glob_wildcard_is_no_query():
    from pipelines.redact import refuse_uri_query

    refuse_uri_query("--input", "s3://b/in/day-?.parquet")
    refuse_uri_query("--input", "s3://b/in/x.parquet?versionId=3")
    with pytest.raises(Exception, match=r"s3://b/in/\?<redacted>: a URI with a query"):
        refuse_uri_query("--input", f"s3://b/in/?X-Amz-Signature={SECRET}")


@pytest.fixture
def s3_reviews(s3_env, nsmc_path, tmp_path, monkeypatch):
    """The reviews on moto's S3, with the planted secret as the S3 secret key (moto accepts any)."""
    import s3fs

    env = {**s3_env, "AWS_SECRET_ACCESS_KEY": SECRET}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = s3fs.S3FileSystem(skip_instance_cache=True)
    if not s3.exists("reviews"):  # (moto keeps its buckets for the whole process)
        s3.mkdir("reviews")
    pq.write_table(pq.read_table(nsmc_path).slice(0, 120), tmp_path / "day-0.parquet")
    s3.put_file(str(tmp_path / "day-0.parquet"), "reviews/in/day-0.parquet")
    return s3, {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}


def kobert(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KOBERT, *args], capture_output=True, text=True, timeout=240, env=env)


def label_args(input_uri: str, output_uri: str) -> list[str]:
    return ["label", "--model", "MODEL", "--input", input_uri, "--output", output_uri, "--text-column", "text",
            "--id-column", "review_id", "--engine", "local", "--threads-per-actor", "1"]


def test_a_secret_in_the_environment_stays_out_of_logs_manifest_and_report(s3_reviews, tiny_model_dir, tmp_path):
    s3, env = s3_reviews
    output = f"reviews/labels-{tmp_path.name}"  # moto keeps buckets for the process: other tests label into it
    args = [str(tiny_model_dir) if arg == "MODEL" else arg for arg in label_args("s3://reviews/in/", f"s3://{output}")]
    done = kobert(env, "-v", *args)  # debug logging: boto's and s3fs's too
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr
    s3.get(output, str(tmp_path / "labels"), recursive=True)
    written = [path for path in (tmp_path / "labels").rglob("*") if path.is_file()]
    assert any(path.name == "_SUCCESS" for path in written) and any(path.name == "report.md" for path in written)
    assert not [path for path in written if SECRET.encode() in path.read_bytes()]


def test_a_secret_in_a_uri_query_is_refused_without_repeating_it(s3_reviews, tiny_model_dir):
    """It was taken as part of the path: "input not found: s3://…?X-Amz-Signature=<the secret>" (and an
    output URI's query went into the manifest and the summary)."""
    s3, env = s3_reviews
    for input_uri, output_uri in [(f"s3://reviews/in/?X-Amz-Signature={SECRET}", "s3://reviews/labels-q"),
                                  ("s3://reviews/in/", f"s3://reviews/labels-q?secret_key={SECRET}")]:
        args = [str(tiny_model_dir) if arg == "MODEL" else arg for arg in label_args(input_uri, output_uri)]
        done = kobert(env, *args)
        assert done.returncode == 2, done.stderr[-3000:]
        assert SECRET not in done.stdout + done.stderr, done.stderr
        assert "a URI with a query or user info is not supported" in done.stderr.strip().splitlines()[-1]
    assert not s3.exists("reviews/labels-q") and not [path for path in s3.find("reviews") if "labels-q" in path]


def test_a_submitted_jobs_printed_entrypoint_hides_the_secret(monkeypatch, capsys):
    from cluster import job_api, submit

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setattr(job_api, "connect", lambda address: object())
    monkeypatch.setattr(job_api, "submit_when_ready", lambda client, address, **kwargs: "job-1")
    config = submit.SubmitConfig(address="http://127.0.0.1:8265", wait=False)
    command = ["kobert", "label", "--input", f"s3://b/in/?X-Amz-Signature={SECRET}", "--output", "s3://b/out",
               "--note", SECRET]
    assert submit.submit(config, command) == 0
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err and "s3://b/in/?<redacted>" in printed.err
