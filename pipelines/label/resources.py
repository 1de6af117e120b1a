"""Who a model actor is: its Ray node, actor id and the CPUs it reserved, so a run can say which actor on
which node labeled how many rows.
"""

from __future__ import annotations

import json


def worker_identity(threads: int) -> str:
    """Who labels here, as a compact JSON key: Ray node id, actor id, CPUs reserved and threads used
    (`"local"` and no CPUs outside a Ray worker). The write stage counts labeled rows per key."""
    node_id, actor_id = "local", "local"
    try:
        import ray

        if ray.is_initialized():
            context = ray.get_runtime_context()
            node_id, actor_id = context.get_node_id(), context.get_actor_id() or "driver"
    except ImportError:
        pass
    return json.dumps({"node_id": node_id, "actor_id": actor_id, "cpus": _assigned_cpus(), "threads": threads},
                      sort_keys=True)


def _assigned_cpus() -> float | None:
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.get_actor_id() is None and context.get_task_id() is None:
        return None  # the driver: it reserves nothing
    return context.get_assigned_resources().get("CPU")
