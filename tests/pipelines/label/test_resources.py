"""Actor CPUs from the cluster's nodes (not the driver's machine), and the threads an actor runs."""

import json
import os

import pytest

from pipelines.label.resources import TASK_CPUS, actor_cpus, reserved_threads, worker_identity


@pytest.mark.parametrize("actors, nodes, expected", [
    (1, [16], 15),  # one actor takes the node but the tasks' CPU
    (2, [16], 7),
    (2, [8, 8], 7),  # one actor per node, a CPU left on each
    (2, [8, 8, 8], 8),  # a third node runs the tasks
    (3, [5, 5], 2),  # 3 actors of 3 CPUs do not fit on two 5-CPU nodes
    (1, [2], 1),  # this project's 2-core machine
    (2, [2], 0.5),  # no whole CPU each: they time-share the cores, one thread each
    (3, [4], 1),
])
def test_cpus_are_shared_out_from_the_nodes_leaving_the_tasks_a_cpu(actors, nodes, expected):
    cpus = actor_cpus(0, actors, "cpu", nodes)
    assert cpus == expected
    assert sum(nodes) - actors * cpus >= TASK_CPUS


def test_explicit_cpus_and_gpu_actors():
    assert actor_cpus(3, 2, "cpu", [4]) == 3
    assert actor_cpus(0, 4, "cuda", [8]) == 1


def test_no_cpu_left_for_actors_is_refused():
    with pytest.raises(ValueError, match="--actors 2 need CPUs"):
        actor_cpus(0, 2, "cpu", [1])


def test_outside_ray_an_actor_uses_every_core_and_says_so():
    assert reserved_threads() == (os.cpu_count() or 1)
    assert worker_identity(3) == '{"actor_id": "local", "cpus": null, "node_id": "local", "threads": 3}'
    assert json.loads(worker_identity(3, {"runtime": "onnx"}))["path"] == {"runtime": "onnx"}
