"""Pretraining data: texts filtered and split on the driver (streaming), masked batches on each worker."""

from __future__ import annotations

import zlib
from typing import Iterator

import numpy as np


def in_eval(text: str, per_mille: int) -> bool:
    """Deterministic, duplicate-stable hold-out: a text is eval iff crc32(text) % 1000 < per_mille."""
    return zlib.crc32(text.encode("utf-8")) % 1000 < per_mille


def read_texts(uri: str, column: str, limit: int | None = None):
    """A Ray Data dataset of `column` only, without null or blank texts; fails naming a missing column."""
    import ray.data

    dataset = ray.data.read_parquet(uri)
    names = dataset.schema().names
    if column not in names:
        raise ValueError(f"{uri} has no column {column!r}; it has {names} (see --text-column)")
    dataset = dataset.select_columns([column])
    if limit:
        dataset = dataset.limit(limit)
    return dataset.map_batches(_non_blank, batch_format="pyarrow", fn_kwargs={"column": column})


def _non_blank(batch, column: str):
    """The rows of a pyarrow batch whose `column` holds text other than whitespace. A batch function rather than
    `Dataset.filter(fn)`, which Ray Data 2.60 answers with a warning on the user's console (it wants an
    expression, and an expression cannot strip text)."""
    import pyarrow.compute as pc

    return batch.filter(pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(batch.column(column)), ""), False))


def split(dataset, column: str, per_mille: int, excluded: frozenset[str] = frozenset()):
    """(train, eval) datasets: excluded texts dropped from both, the hash hold-out in eval."""
    return tuple(dataset.map_batches(_part, batch_format="pyarrow", fn_kwargs={
        "column": column, "per_mille": per_mille, "excluded": excluded, "want_eval": want_eval})
        for want_eval in (False, True))


def _part(batch, column: str, per_mille: int, excluded: frozenset[str], want_eval: bool):
    """The rows of a pyarrow batch in the train part (`want_eval` False) or the eval part, excluded texts in
    neither."""
    import pyarrow as pa

    keep = [text not in excluded and in_eval(text, per_mille) == want_eval
            for text in batch.column(column).to_pylist()]
    return batch.filter(pa.array(keep, pa.bool_()))


def masked_batches(shard, tokenizer, column: str, batch_size: int, max_length: int, bucket_batches: int,
                   mask_probability: float, seed: int | None) -> Iterator[dict[str, np.ndarray]]:
    """Length-bucketed, MLM-corrupted batches (`input_ids`, `attention_mask`, `labels` with -100).

    `seed` None is evaluation: every text is masked by a draw seeded from the text itself, so the eval loss
    of one model is the same whichever rank or epoch scores a row.
    """
    import torch

    from kobert_ops.batching import bucket_batches as bucket, pad_batch
    from kobert_ops.masking import mask_rows_by_text, mask_tokens

    special_ids = tokenizer.special_ids
    pool_rows = batch_size * bucket_batches
    shuffle = {} if seed is None else {"local_shuffle_buffer_size": pool_rows * 2, "local_shuffle_seed": seed}
    rng = None if seed is None else np.random.default_rng(seed)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    for pool in shard.iter_batches(batch_size=pool_rows, batch_format="numpy", **shuffle):
        texts = [str(text) for text in pool[column]]
        if not texts:
            continue
        encoded = tokenizer.batch_encode(texts, max_length=max_length, num_threads=1)
        for rows in bucket(encoded["valid_length"], batch_size, rng):
            batch = pad_batch(encoded["input_ids"][rows], encoded["valid_length"][rows], tokenizer.pad_token_id)
            ids = torch.from_numpy(batch["input_ids"])
            if generator is None:
                corrupted, labels = mask_rows_by_text(ids, [texts[row] for row in rows], special_ids,
                                                      tokenizer.mask_token_id, tokenizer.vocab_size,
                                                      probability=mask_probability)
            else:
                corrupted, labels = mask_tokens(ids, special_ids, tokenizer.mask_token_id, tokenizer.vocab_size,
                                                probability=mask_probability, generator=generator)
            yield {"input_ids": corrupted.numpy(), "attention_mask": batch["attention_mask"], "labels": labels.numpy()}
