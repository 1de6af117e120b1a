"""Training with object storage (an S3 API: moto's server on 127.0.0.1). Two experiments that share
`--storage-path s3://…` but not an output each train their own run (before run folders were named after the
output, the second restored the first's snapshot); `--output s3://…` holds the model, report and checkpoints."""

from __future__ import annotations

import json
import urllib.request

import pytest

from pipelines.cli import main

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


@pytest.fixture
def s3_ray(monkeypatch):
    """An S3 API and a Ray started after its credentials are set, so the training workers inherit them."""
    import ray
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its buckets in the process, across servers: start each test from an empty S3
    urllib.request.urlopen(f"http://{host}:{port}/moto-api/reset", data=b"")
    for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(key, value)
    s3 = s3fs.S3FileSystem(skip_instance_cache=True)
    s3.mkdir("checkpoints")
    ray.init(address="local", num_cpus=3, include_dashboard=False)
    try:
        yield s3
    finally:
        ray.shutdown()
        server.stop()


def test_two_experiments_sharing_s3_storage_train_their_own_runs(s3_ray, nsmc_2k, nsmc_ternary, tmp_path):
    common = ["--model", "tiny", "--num-workers", "2", "--max-length", "64", "--batch-size", "32", "--epochs", "1",
              "--max-steps-per-epoch", "6", "--storage-path", "s3://checkpoints/team"]
    first, second = tmp_path / "binary", tmp_path / "ternary"
    assert main(["train", *common, "--train", str(nsmc_2k / "train.parquet"), "--eval",
                 str(nsmc_2k / "eval.parquet"), "--output", str(first)]) == 0
    assert main(["train", *common, "--train", str(nsmc_ternary / "train.parquet"), "--eval",
                 str(nsmc_ternary / "eval.parquet"), "--output", str(second)]) == 0
    one, two = (json.loads((folder / "metrics.json").read_text()) for folder in (first, second))
    assert two["history"][0]["resumed_from_epoch"] == 0 and two["history"][0]["global_step"] == 6
    assert two["best"]["fingerprints"][0] != one["best"]["fingerprints"][0]
    assert two["best_eval"]["labels"] == ["부정", "중립", "긍정"]  # its own model, not the first's
    # (`ls` also lists the folder's own placeholder key, "checkpoints/team/")
    runs = sorted({path.rstrip("/") for path in s3_ray.ls("checkpoints/team")} - {"checkpoints/team"})
    runs = [path.rsplit("/", 1)[-1] for path in runs]
    assert len(runs) == 2 and all(s3_ray.exists(f"checkpoints/team/{run}/kobert_run.json") for run in runs)
    assert main(["train", *common, "--train", str(nsmc_2k / "train.parquet"), "--eval",
                 str(nsmc_2k / "eval.parquet"), "--output", str(first)]) == 2  # same output again: refused


def test_output_in_object_storage_holds_the_model_and_its_checkpoints(s3_ray, nsmc_2k, tmp_path, monkeypatch):
    """`--output s3://…` (as in the RayJob manifest) used to make a local folder named `s3:/…` on the driver."""
    monkeypatch.chdir(tmp_path)
    s3_ray.mkdir("models")
    assert main(["train", "--model", "tiny", "--num-workers", "2", "--max-length", "64", "--batch-size", "32",
                 "--epochs", "1", "--max-steps-per-epoch", "6", "--train", str(nsmc_2k / "train.parquet"),
                 "--eval", str(nsmc_2k / "eval.parquet"), "--output", "s3://models/nsmc-tiny"]) == 0
    assert not (tmp_path / "s3:").exists()
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "metrics.json", "report.md",
                 "training_curves.png"):
        assert s3_ray.exists(f"models/nsmc-tiny/{name}"), name
    assert s3_ray.glob("models/nsmc-tiny/checkpoints/*/checkpoint_epoch001_*")  # Ray Train's storage beside it
    local = tmp_path / "downloaded"
    s3_ray.get("models/nsmc-tiny/", str(local), recursive=True)
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(local).config.id2label == {0: "부정", 1: "긍정"}
    assert json.loads((local / "metrics.json").read_text())["output"] == "s3://models/nsmc-tiny"
