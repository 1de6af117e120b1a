"""Length bucketing and dynamic padding for training batches.

Reviews are short and uneven (most NSMC reviews are under 40 KoBERT ids, a few hit `max_length`). Padding
every batch to `max_length` spends most of the compute on `[PAD]`. Instead a *pool* of rows (a few dozen
batches) is sorted by length, cut into batches of similar length, and the batches are visited in a random
order; each batch is then padded only to its own longest row. Randomness stays at the level that matters
for SGD (which rows meet in a batch varies per pool and epoch; batch order is shuffled).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from kobert_ops.model import KOBERT_PAD_ID


def bucket_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Row indices of a pool grouped into batches of similar length.

    Ties in length are broken randomly when `rng` is given (so equal-length rows do not always meet), and
    the batch order is shuffled; without `rng` batches come shortest first (evaluation: deterministic).
    Every row appears in exactly one batch; the last batch of a length order may be smaller.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = np.lexsort((rng.random(len(lengths)), lengths))  # sort by length, random among equals
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad_batch(
    input_ids: np.ndarray, valid_length: np.ndarray, pad_id: int = KOBERT_PAD_ID
) -> dict[str, np.ndarray]:
    """Cut rows encoded at any padding width down to the batch's longest row.

    Args:
        input_ids: `(B, W)` ids from `KoBERTTokenizer.batch_encode`, padded with `pad_id`.
        valid_length: `(B,)` ids before padding.

    Returns:
        `input_ids` `(B, T)` with `T = max(valid_length)`, and the matching `attention_mask`.
    """
    valid_length = np.asarray(valid_length, dtype=np.int64)
    width = int(valid_length.max(initial=1))
    ids = np.array(input_ids[:, :width], dtype=np.int64, copy=True)
    mask = (np.arange(width)[None, :] < valid_length[:, None]).astype(np.int64)
    ids[mask == 0] = pad_id  # (B, T): any id past valid_length becomes [PAD]
    return {"input_ids": ids, "attention_mask": mask}


def bucketed_batches(
    pools: Iterable[dict[str, np.ndarray]],
    encode,
    batch_size: int,
    text_column: str,
    label_column: str,
    rng: np.random.Generator | None = None,
    pad_id: int = KOBERT_PAD_ID,
) -> Iterator[dict[str, np.ndarray]]:
    """Turn pools of raw rows into padded, length-bucketed batches.

    Args:
        pools: dict batches with at least `text_column` and `label_column` (e.g. Ray Data `iter_batches`).
        encode: `texts -> KoBERTTokenizer.batch_encode(...)`-style dict with `input_ids` and `valid_length`.
        rng: shuffles within and across buckets (training); None keeps a deterministic order (evaluation).
        pad_id: the tokenizer's padding id (KoBERT's 1 by default; ELECTRA's is 0).

    Yields:
        `input_ids`, `attention_mask` (int64, `(B, T)`) and `labels` (int64, `(B,)`).
    """
    for pool in pools:
        for column in (text_column, label_column):
            if column not in pool:
                raise KeyError(f"column {column!r} is missing; the data has {sorted(pool)}")
        texts = [str(text) for text in pool[text_column]]
        if not texts:
            continue
        labels = np.asarray(pool[label_column], dtype=np.int64)
        encoded = encode(texts)
        for rows in bucket_batches(encoded["valid_length"], batch_size, rng):
            batch = pad_batch(encoded["input_ids"][rows], encoded["valid_length"][rows], pad_id)
            batch["labels"] = labels[rows]
            yield batch


def encoded_batch(input_ids: np.ndarray, lengths: np.ndarray, truncated: np.ndarray) -> dict[str, np.ndarray]:
    """What every tokenizer's `batch_encode` returns: padded ids, their mask, zero segment ids, lengths, and
    which rows lost pieces to `max_length`."""
    attention_mask = (np.arange(input_ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids),
            "valid_length": lengths, "truncated": truncated}
