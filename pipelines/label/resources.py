"""CPUs and threads of the model actors, from the nodes they run on, never from the driver's machine.

Each actor reserves `--cpus-per-actor` CPUs and runs that many torch threads (read back inside the actor from
what Ray assigned it). By default the CPUs are shared out from the cluster's nodes, keeping `TASK_CPUS` free:
the read and write tasks need a CPU each, and a pool of actors holding every CPU leaves them none, so the run
waits forever (seen: `--actors 2` on a 2-CPU local Ray hung with the ListFiles task queued).
"""

from __future__ import annotations

import json
import math
import os
import sys

TASK_CPUS = 1  # CPUs kept free for the read/validate and write tasks


def actor_cpus(requested: float, actors: int, device: str, node_cpus: list[float]) -> float:
    """CPUs each of `actors` model actors reserves.

    Args:
        requested: `--cpus-per-actor`; 0 chooses.
        actors: the most actors the pool may hold.
        device: `cpu` or `cuda` (a GPU actor feeds its GPU with one CPU).
        node_cpus: CPUs of each alive node.

    The choice is the largest whole number of CPUs such that `actors` actors fit on the nodes (each actor on
    one node) with `TASK_CPUS` left over; failing that, an equal fraction of what remains after `TASK_CPUS`
    (e.g. 0.5 each for 2 actors on 2 CPUs: they then time-share the cores, one thread each).

    Raises:
        ValueError: the cluster has no CPU left for the actors after the tasks' share.
    """
    if requested > 0:
        return requested
    if device == "cuda":
        return 1.0
    total = sum(node_cpus)
    for whole in range(int(max(node_cpus, default=0)), 0, -1):
        fits = sum(int(cpus // whole) for cpus in node_cpus) >= actors
        if fits and total - actors * whole >= TASK_CPUS:
            return float(whole)
    share = math.floor(100 * (total - TASK_CPUS) / actors) / 100  # Ray accepts fractions of a CPU
    if share <= 0:
        raise ValueError(f"--actors {actors} need CPUs, but the cluster's {total:g} leave none after {TASK_CPUS} "
                         "for the read and write tasks; lower --actors or set --cpus-per-actor")
    return share


def alive_node_cpus() -> list[float]:
    """CPUs of every alive node of the connected Ray cluster."""
    import ray

    return [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]


def reserved_threads() -> int:
    """torch threads for this process: the CPUs Ray assigned to it (rounded down, at least 1) inside a Ray
    worker, every core outside Ray (the driver, the local engine)."""
    cpus = _assigned_cpus()
    if cpus is None:
        return os.cpu_count() or 1
    return max(1, int(cpus))


def worker_identity(threads: int, path: dict | None = None) -> str:
    """Who labels here, as a compact JSON key: Ray node id, actor id, CPUs reserved, threads used and the
    path (runtime, device, precision, why) it runs (`"local"` and no CPUs outside a Ray worker). The write
    stage counts labeled rows per key."""
    node_id, actor_id = "local", "local"
    if "ray" in sys.modules:  # imported wherever Ray runs; the local engine does not pay for its import here
        import ray

        if ray.is_initialized():
            context = ray.get_runtime_context()
            node_id, actor_id = context.get_node_id(), context.get_actor_id() or "driver"
    return json.dumps({"node_id": node_id, "actor_id": actor_id, "cpus": _assigned_cpus(), "threads": threads,
                       **({"path": path} if path else {})}, sort_keys=True)


def _assigned_cpus() -> float | None:
    if "ray" not in sys.modules:  # no Ray in this process (the local engine): nothing assigned
        return None
    import ray

    if not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.get_actor_id() is None and context.get_task_id() is None:
        return None  # the driver: it reserves nothing
    return context.get_assigned_resources().get("CPU")
