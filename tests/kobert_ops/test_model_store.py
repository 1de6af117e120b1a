"""Models in object storage through a real S3 API (moto's server on 127.0.0.1): pinned by digest, fetched once
per node into a cache keyed by it, verified, and refused once the stored files change."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from kobert_ops import hub, model_store


@pytest.fixture
def s3(monkeypatch, s3_env, tmp_path):
    """A fresh bucket on the S3 API, this process pointed at it, and a node cache of its own."""
    import s3fs

    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "node-a"))
    s3fs.S3FileSystem.clear_instance_cache()  # fsspec caches filesystems with the endpoint of an earlier server
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_env["AWS_ENDPOINT_URL"]})
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    return fs, bucket


def upload(fs, folder: Path, uri: str) -> None:
    for path in folder.iterdir():
        if path.is_file():
            fs.put_file(str(path), f"{uri}/{path.name}")
    fs.invalidate_cache()


def test_pin_names_the_digest_of_the_model_files_and_resolve_fetches_exactly_them(s3, tiny_model_dir):
    fs, bucket = s3
    uri = f"s3://{bucket}/models/tiny"
    upload(fs, tiny_model_dir, uri)
    fs.put_file(str(tiny_model_dir / "config.json"), f"{uri}/checkpoints/run/checkpoint_000/config.json")

    pinned = hub.pin(uri)
    local = hub.resolve(pinned)

    assert pinned == f"{uri}#sha256={model_store.content_digest(tiny_model_dir)}"
    assert local.name == pinned.rsplit("=", 1)[1]
    expected = {p.name for p in tiny_model_dir.iterdir() if p.is_file()}
    assert {p.name for p in local.iterdir()} - {model_store.DIGEST_FILE} == expected  # no checkpoints/
    assert (local / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()


def test_a_model_overwritten_after_the_pin_is_refused_on_a_node_that_has_not_fetched_it(s3, tiny_model_dir,
                                                                                        monkeypatch, tmp_path):
    fs, bucket = s3
    uri = f"s3://{bucket}/models/tiny"
    upload(fs, tiny_model_dir, uri)
    pinned = hub.pin(uri)
    fs.pipe_file(f"{uri}/config.json", b'{"changed": true}')
    fs.invalidate_cache()

    assert hub.resolve(pinned).name == pinned.rsplit("=", 1)[1]  # a node that has the pinned bytes keeps them
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "node-b"))
    with pytest.raises(model_store.ModelChangedError, match="changed after this run pinned it"):
        hub.resolve(pinned)
    assert not list((tmp_path / "node-b" / "models").glob(".partial-*"))  # nothing half-fetched left behind
    assert hub.pin(uri) != pinned  # the next run pins the new version


def test_concurrent_resolves_on_one_node_fetch_once(s3, tiny_model_dir, monkeypatch):
    fs, bucket = s3
    uri = f"s3://{bucket}/models/tiny"
    upload(fs, tiny_model_dir, uri)
    pinned = f"{uri}#sha256={model_store.content_digest(tiny_model_dir)}"
    calls = []
    get_file = type(fs).get_file

    def counted(self, source, target, **kwargs):
        calls.append(source)
        return get_file(self, source, target, **kwargs)

    monkeypatch.setattr(type(fs), "get_file", counted)
    results, errors = [], []

    def resolve():
        try:
            results.append(hub.resolve(pinned))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert len(set(results)) == 1
    files = [p for p in tiny_model_dir.iterdir() if p.is_file()]
    assert len(calls) == len(set(calls)) == len(files)  # each file fetched once


def test_a_uri_without_a_model_says_so(s3):
    fs, bucket = s3
    with pytest.raises(FileNotFoundError, match=f"no model or tokenizer at s3://{bucket}/nothing"):
        hub.pin(f"s3://{bucket}/nothing")


def test_a_hub_id_is_pinned_to_the_commit_it_resolved_offline(offline_hub):
    pinned = hub.pin("skt/kobert-base-v1")
    repo, commit = pinned.split("@")

    assert repo == "skt/kobert-base-v1" and len(commit) == 40
    assert hub.resolve(pinned) == hub.resolve("skt/kobert-base-v1")
    assert hub.resolve(pinned).name == commit


def test_a_local_folder_and_a_preset_stay_as_they_are(tiny_model_dir):
    assert hub.pin(str(tiny_model_dir)) == str(tiny_model_dir)
    assert hub.pin("tiny") == "tiny"
