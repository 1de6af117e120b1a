"""A multi-node run refuses node-local paths before any work (the check itself; the cluster test runs it)."""

import pytest

from pipelines.core.nodes import SHARED_FILESYSTEM_ENV, refuse_node_local
from pipelines.errors import UserError


def test_a_local_path_on_a_multi_node_cluster_is_refused_naming_the_flag_and_what_to_do(monkeypatch):
    monkeypatch.delenv(SHARED_FILESYSTEM_ENV, raising=False)
    with pytest.raises(UserError, match=r"--output /data/out is a local path, but this Ray cluster has 3 nodes.*s3://"):
        refuse_node_local({"--model": None, "--train": "s3://b/train", "--output": "/data/out"}, nodes=3)
    with pytest.raises(UserError, match="--storage-path file:///ckpt"):
        refuse_node_local({"--storage-path": "file:///ckpt"}, nodes=2)


def test_one_node_uris_and_a_declared_shared_filesystem_pass(monkeypatch):
    monkeypatch.delenv(SHARED_FILESYSTEM_ENV, raising=False)
    refuse_node_local({"--output": "/data/out"}, nodes=1)
    refuse_node_local({"--output": "s3://b/out", "--input": "gs://b/in", "--model": None}, nodes=3)
    monkeypatch.setenv(SHARED_FILESYSTEM_ENV, "1")
    refuse_node_local({"--output": "/nfs/out"}, nodes=3)
