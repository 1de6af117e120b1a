"""Tokenize stage: texts → the model's token ids, on CPU tasks, a batch at a time.

Ids travel to the model actors as a ragged `list<int16>` column where the vocabulary fits in int16 (KoBERT's
8,002 ids; a review averages ~17 ids, so ragged int16 rows are ~30× smaller in the object store than rows
padded to `max_length` as int64), else `list<int32>` (KcELECTRA's 50,000, any vocabulary over 32,768).
Rejected rows get an empty list and are not tokenized.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

from pipelines.label.validate import accepted_mask

TOKEN_IDS, TRUNCATED = "token_ids", "truncated"


@lru_cache(maxsize=4)
def load_tokenizer(directory: str):
    """One tokenizer per worker process and directory (Ray reuses worker processes across tasks)."""
    from kobert_ops import tokenizer

    return tokenizer.load_tokenizer(directory)


def id_type(vocab_size: int) -> np.dtype:
    """The narrowest integer type holding every id of a vocabulary: int16 up to 32,768 ids, else int32."""
    return np.dtype(np.int16) if vocab_size <= np.iinfo(np.int16).max + 1 else np.dtype(np.int32)


def tokenize(batch: pa.Table, *, tokenizer_dir: str, text_column: str, max_length: int) -> pa.Table:
    """Add `token_ids` (list<int16> or list<int32>, with the model's special tokens, truncated to `max_length`)
    and `truncated` (bool)."""
    tokenizer = load_tokenizer(tokenizer_dir)
    dtype = id_type(tokenizer.vocab_size)
    accepted = accepted_mask(batch)
    count = batch.num_rows
    lengths = np.zeros(count, dtype=np.int64)
    truncated = np.zeros(count, dtype=bool)
    values = np.zeros(0, dtype=dtype)
    rows = np.flatnonzero(accepted)
    if len(rows):
        texts = batch.column(text_column).take(pa.array(rows)).to_pylist()
        encoded = tokenizer.batch_encode(texts, max_length=max_length, padding="longest")
        lengths[rows] = encoded["valid_length"]
        truncated[rows] = encoded["truncated"]
        # row-major boolean indexing concatenates each row's ids in order: the ragged values buffer
        values = encoded["input_ids"][encoded["attention_mask"].astype(bool)].astype(dtype)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    token_ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.from_numpy_dtype(dtype)))
    return batch.append_column(TOKEN_IDS, token_ids).append_column(TRUNCATED, pa.array(truncated))


def padded(token_ids: pa.ChunkedArray | pa.ListArray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids (N, longest) int64 padded with `pad_id`, valid_length (N,)) from a `token_ids` column."""
    if isinstance(token_ids, pa.ChunkedArray):
        token_ids = token_ids.combine_chunks()
    offsets = token_ids.offsets.to_numpy()
    lengths = np.diff(offsets).astype(np.int64)
    values = token_ids.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    width = int(lengths.max(initial=1))
    input_ids = np.full((len(lengths), width), pad_id, dtype=np.int64)
    input_ids[np.arange(width)[None, :] < lengths[:, None]] = values
    return input_ids, lengths
