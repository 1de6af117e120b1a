"""The digest cache: a later process finds a settled file's digest without reading it; any write is seen."""

import hashlib
import json
import os

import pytest

from kobert_ops import file_digest


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(file_digest, "_kept", {})
    return tmp_path / "cache" / file_digest.CACHE_FILE


def hasher(path, calls):
    def compute():
        calls.append(path)
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return compute


def test_a_settled_file_is_hashed_once_across_processes(cache, tmp_path, monkeypatch):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    monkeypatch.setattr(file_digest, "SETTLED_S", -5.0)  # the file counts as settled
    calls = []
    first = file_digest.cached("sha256", [weights], hasher(weights, calls))
    assert first == hashlib.sha256(b"a" * 1000).hexdigest() and len(calls) == 1
    monkeypatch.setattr(file_digest, "_kept", {})  # a new process: only the cache file remains
    assert file_digest.cached("sha256", [weights], hasher(weights, calls)) == first
    assert len(calls) == 1
    assert len(json.loads(cache.read_text())) == 1
    assert file_digest.cached("other kind", [weights], hasher(weights, calls)) == first and len(calls) == 2


def test_a_file_written_again_is_hashed_again(cache, tmp_path, monkeypatch):
    """Same size, and the modification time put back: the change time still differs."""
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    monkeypatch.setattr(file_digest, "SETTLED_S", -5.0)
    calls = []
    file_digest.cached("sha256", [weights], hasher(weights, calls))
    stat = weights.stat()
    weights.write_bytes(b"b" * 1000)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_ctime_ns != stat.st_ctime_ns  # (what the cache relies on)
    monkeypatch.setattr(file_digest, "_kept", {})
    assert file_digest.cached("sha256", [weights], hasher(weights, calls)) == hashlib.sha256(b"b" * 1000).hexdigest()
    assert len(calls) == 2


def test_a_file_changed_just_now_is_not_kept(cache, tmp_path):
    """Inside `SETTLED_S` of its last change a file could still be written again within the same clock tick."""
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    calls = []
    for _ in range(2):
        file_digest.cached("sha256", [weights], hasher(weights, calls))
    assert len(calls) == 2 and not cache.exists()


def test_a_read_only_cache_folder_still_gives_digests(tmp_path, monkeypatch):
    monkeypatch.setattr(file_digest, "_kept", {})
    monkeypatch.setattr(file_digest, "SETTLED_S", -5.0)
    monkeypatch.setattr(file_digest, "cache_path", lambda: None)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a")
    assert file_digest.cached("sha256", [weights], lambda: "digest") == "digest"
