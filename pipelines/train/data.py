"""Training data: Ray Data datasets on the driver, length-bucketed batches from a shard on each worker.

Tokenization happens on the workers, per pool of rows, not in a Ray Data `map_batches` stage: KoBERT's
SentencePiece encoder is fast (far from the bottleneck of a training step), and keeping Ray Data to
read + split means it needs no CPUs beyond those the training workers hold.
"""

from __future__ import annotations

import json
import logging
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)


def read_dataset(uri: str, columns: list[str]):
    """A Ray Data dataset of `uri` (Parquet) with only `columns`; fails naming a missing column."""
    import ray.data

    dataset = ray.data.read_parquet(uri)
    require_columns(uri, dataset.schema().names, columns)
    return dataset.select_columns(columns)


def require_columns(uri: str, names: list[str], columns: list[str]) -> None:
    """Fail naming the columns `uri` lacks (of `columns`) and those it has."""
    missing = [column for column in columns if column not in names]
    if missing:
        raise ValueError(f"{uri} has no column(s) {missing}; it has {names} (see --text-column/--label-column)")


def count_rows(uri: str, dataset) -> int:
    """Rows of a Parquet file or folder, from the footers (no Ray Data job); `dataset.count()` otherwise."""
    import pyarrow.dataset as pads

    try:
        return int(pads.dataset(uri, format="parquet").count_rows())
    except Exception:  # a URI pyarrow cannot open by itself, or a folder with other files: let Ray Data count
        return int(dataset.count())


def labels_beside(uri: str) -> list[str] | None:
    """Label names from a `labels.json` in a data directory or next to a data file (local or any URI)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    path = path.rstrip("/")
    for candidate in (f"{path}/labels.json", f"{path.rsplit('/', 1)[0]}/labels.json"):
        if fs.isfile(candidate):
            content = json.loads(fs.cat_file(candidate).decode("utf-8"))
            return list(content["labels"] if isinstance(content, dict) else content)
    return None


def labels_from_data(uri: str, label_column: str) -> list[str]:
    """Label names from the data: `label_name` per id when the data has it, else the ids themselves.

    Read with pyarrow through fsspec (only the label columns, any URI): a Ray Data `groupby` would start
    hash-aggregator actors, each its own Python process, to find a handful of distinct ids.
    """
    import fsspec
    import pyarrow.dataset as pads

    fs, path = fsspec.core.url_to_fs(uri)
    dataset = pads.dataset(path, filesystem=fs, format="parquet")
    require_columns(uri, dataset.schema.names, [label_column])
    has_names = "label_name" in dataset.schema.names
    keys = [label_column, "label_name"] if has_names else [label_column]
    rows = dataset.to_table(columns=keys).group_by(keys).aggregate([]).to_pylist()
    names: dict[int, str] = {}
    for row in rows:
        label_id = int(row[label_column])
        name = str(row["label_name"]) if has_names else str(label_id)
        if names.setdefault(label_id, name) != name:
            raise ValueError(f"label id {label_id} has two names in the data: {names[label_id]!r} and {name!r}")
    ids = sorted(names)
    if ids != list(range(len(ids))):
        raise ValueError(f"label ids must be 0..K-1, the data has {ids}")
    return [names[i] for i in ids]


def worker_batches(
    shard,
    tokenizer,
    text_column: str,
    label_column: str,
    batch_size: int,
    max_length: int,
    bucket_batches: int,
    seed: int | None,
) -> Iterator[dict[str, np.ndarray]]:
    """Padded batches from one worker's shard: pools of `bucket_batches × batch_size` rows, bucketed.

    `seed` shuffles rows locally and the order of batches (training); None gives a deterministic,
    length-sorted pass (evaluation).
    """
    from kobert_ops.batching import bucketed_batches

    pool_rows = batch_size * bucket_batches
    shuffle = {} if seed is None else {"local_shuffle_buffer_size": pool_rows * 2, "local_shuffle_seed": seed}
    pools = shard.iter_batches(batch_size=pool_rows, batch_format="numpy", **shuffle)
    rng = None if seed is None else np.random.default_rng(seed)

    def encode(texts):
        return tokenizer.batch_encode(texts, max_length=max_length, padding="longest", num_threads=1)

    return bucketed_batches(pools, encode, batch_size, text_column, label_column, rng, tokenizer.pad_token_id)
