"""How datasets reach the ranks: every eval row scored once, training rows reshuffled every epoch, equal
batch counts on every rank, and batches prepared ahead of the step that needs them.

Ray Train splits each dataset with `streaming_split(equal=True)`, which drops up to world_size − 1 rows,
different ones per epoch: right for training (ranks must step in lockstep), wrong for evaluation (the best
checkpoint would be chosen on a different subset each epoch). `ExactEvalDataConfig` splits the eval set
without dropping; evaluation has no per-step collective, so uneven shards are harmless there.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

import numpy as np
from ray.train import DataConfig


class ExactEvalDataConfig(DataConfig):
    """Ray Train's data config, but the datasets named in `exact` are split without dropping rows."""

    def __init__(self, exact: tuple[str, ...] = ("eval",), **kwargs) -> None:
        super().__init__(**kwargs)
        self._exact = set(exact)

    def configure(self, datasets, world_size, worker_handles, worker_node_ids, **kwargs):
        exact = {name: datasets[name] for name in self._exact if name in datasets}
        rest = {name: dataset for name, dataset in datasets.items() if name not in exact}
        output = super().configure(rest, world_size, worker_handles, worker_node_ids, **kwargs)
        hints = worker_node_ids if self._enable_shard_locality else None
        for name, dataset in exact.items():
            dataset = dataset.copy(dataset)
            if dataset.name is None:
                dataset.set_name(name)
            dataset.context.execution_options = self._resolve_execution_options(name)
            for rank, split in enumerate(dataset.streaming_split(world_size, equal=False, locality_hints=hints)):
                output[rank][name] = split
        return output


def shuffled(dataset, shuffle: str):
    """The training set as each epoch should see it.

    `global`: a full random shuffle, re-drawn every epoch (Ray Data re-executes the plan per epoch), so data
    sorted by label or date never trains on long single-class runs; `blocks`: random block order only (pair
    with the workers' local buffer; enough for data that is already shuffled); `none`: file order.
    """
    if shuffle == "global":
        return dataset.random_shuffle()
    if shuffle == "blocks":
        return dataset.randomize_block_order()
    return dataset


def steps_per_epoch(rows: int, world_size: int, batch_size: int, max_steps: int | None = None) -> int:
    """Optimizer steps every rank takes per epoch: the equal split gives each rank ⌊rows / world size⌋ rows,
    cut into batches of `batch_size` (the last one partial)."""
    per_rank = rows // world_size
    steps = -(-per_rank // batch_size)
    return min(steps, max_steps) if max_steps else steps


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from (seed, epoch, rank, …) that never collides for different tuples in practice
    (`seed * 1000 + epoch * 10 + rank` did from rank 10 on)."""
    return int(np.random.SeedSequence([int(part) for part in parts]).generate_state(1)[0])


_END = object()


def prefetch(batches: Iterable, depth: int = 4) -> Iterator:
    """Iterate `batches` in a background thread, `depth` batches ahead, so reading, tokenizing and padding
    overlap the training step instead of stalling the device between steps. Errors surface in the caller."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        """Hand `item` to the consumer; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    thread = threading.Thread(target=fill, daemon=True, name="batch-prefetch")
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the producer stops after at most one more batch; wait for it, so that no thread still
        thread.join()  # pulls from this epoch's iterator when the next epoch (or evaluation) starts
