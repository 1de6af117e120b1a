"""How data reaches the ranks, on one process: exact step counts, distinct seeds, prefetch that stops cleanly."""

import threading

import numpy as np
import pandas as pd
import pytest

from pipelines.core.data import derive_seed, prefetch, steps_per_epoch


def test_steps_per_epoch_is_what_every_rank_really_takes(tokenizer_dir):
    """129 rows on 2 ranks in batches of 64: the equal split gives each rank 64 rows, one batch. The old
    ceil(rows / (world size × batch)) said 2, so the schedule never reached 0 on the last step."""
    from kobert_ops.tokenizer import load_tokenizer
    from pipelines.train.data import worker_batches

    assert steps_per_epoch(129, 2, 64) == 1
    assert steps_per_epoch(1000, 2, 64) == 8 and steps_per_epoch(1000, 2, 64, max_steps=5) == 5
    tokenizer = load_tokenizer(tokenizer_dir)

    class Shard:  # what `iter_batches` of a rank's 64-row split yields (a Ray DataIterator's interface)
        def iter_batches(self, batch_size, batch_format, **_):
            frame = pd.DataFrame({"text": ["좋다"] * 64, "label": [1] * 64})
            for start in range(0, 64, batch_size):
                part = frame.iloc[start : start + batch_size]
                yield {"text": part["text"].to_numpy(dtype=object), "label": part["label"].to_numpy()}

    batches = list(worker_batches(Shard(), tokenizer, "text", "label", 64, 32, 32, seed=1))
    assert len(batches) == steps_per_epoch(129, 2, 64)


def test_seeds_differ_for_every_epoch_and_rank():
    seeds = {derive_seed(42, epoch, rank) for epoch in range(1, 21) for rank in range(64)}
    assert len(seeds) == 20 * 64  # 42 * 1000 + epoch * 10 + rank collided from rank 10 on
    assert derive_seed(42, 1, 0) == derive_seed(42, 1, 0)


def test_prefetch_keeps_order_raises_errors_and_stops_its_thread():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        list(prefetch(broken()))
    pulled = []

    def endless():
        for item in range(10**9):
            pulled.append(item)
            yield item

    stream = prefetch(endless(), depth=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()  # what an epoch cut short does: the producer must stop pulling from the iterator
    count = len(pulled)
    assert count <= 5 + 2 + 2 and not any(t.name == "batch-prefetch" for t in threading.enumerate())
