"""What a run may assume about the Ray it runs on: on more than one node, only object storage is shared.

A local path works on one machine and fails late on a cluster: staging files land on the workers' own disks
and the driver's commit cannot find them, or Ray Train refuses the storage path only when a remote rank 0
first uploads, an epoch in. So before any work, a run on a multi-node cluster refuses every node-local path
it would read or write, in one line that says to use object storage.

A team whose nodes do share a filesystem (NFS, a mounted volume) at the same path says so with
`KOBERT_SHARED_FILESYSTEM=1`.
"""

from __future__ import annotations

import os

from kobert_ops.model_store import is_uri
from pipelines.errors import UserError

SHARED_FILESYSTEM_ENV = "KOBERT_SHARED_FILESYSTEM"


def alive_nodes() -> list[str]:
    """Node ids of the connected Ray's live nodes."""
    import ray

    return [node["NodeID"] for node in ray.nodes() if node.get("Alive")]


def node_local(path: str | None) -> bool:
    """A plain or `file://` path: on a cluster, every node has its own."""
    return bool(path) and (not is_uri(path) or str(path).startswith("file://"))


def refuse_node_local(paths: dict[str, str | None], nodes: int | None = None) -> None:
    """On a connected Ray of more than one node, refuse the first local path of `paths` (flag → path).

    Raises:
        UserError: names the flag, the path and the node count, and says what to use instead.
    """
    if os.environ.get(SHARED_FILESYSTEM_ENV, "").lower() in ("1", "true", "yes"):
        return
    nodes = len(alive_nodes()) if nodes is None else nodes
    if nodes < 2:
        return
    for flag, path in paths.items():
        if node_local(path):
            raise UserError(
                f"{flag} {path} is a local path, but this Ray cluster has {nodes} nodes that share no disk: "
                f"put it in object storage and pass its URI (s3://…, gs://…), or set {SHARED_FILESYSTEM_ENV}=1 "
                "if every node mounts it at that path")


def default_cpus_per_worker(num_workers: int, use_gpu: bool) -> int:
    """CPUs (and torch threads) per training worker from the nodes of the connected Ray, not the driver's
    machine: on CPU, as many as the largest node holds with one left for Ray Data's reads, and no more than
    the cluster can give every worker; a GPU worker needs one CPU to feed its GPU."""
    import ray

    if use_gpu:
        return 1
    cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    if not cpus:
        return 1
    return max(1, min(max(cpus) - 1, (sum(cpus) - 1) // num_workers))
