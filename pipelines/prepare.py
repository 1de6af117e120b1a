"""`kobert prepare nsmc`: raw Naver movie reviews → clean, balanced, seeded train/eval/test Parquet splits.

    kobert prepare nsmc --input ../shared/data/nsmc/reviews.parquet --output data/nsmc
    kobert prepare nsmc --input ../shared/data/nsmc/reviews.parquet --output data/nsmc3 --scheme ternary
    kobert prepare nsmc --input ../shared/data/nsmc/reviews.parquet --output data/small --sample 6000

Stages, in order, each counted in `summary.json`: read → drop null/empty texts → label by rating (NSMC:
1-4 → 0, 9-10 → 1, 5-8 left out) → drop exact duplicate texts (every copy when copies disagree on the
label: such a text cannot be learned) → balance classes by downsampling → optional sample → stratified
split. Deduplicating before splitting keeps an identical review from landing in both train and test.
The corpus (650k rows) fits in memory comfortably, so this runs in pandas on one machine.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field

from pipelines.args import add_dataclass_arguments, dataclass_from_args
from pipelines.core.storage import staged_output

HELP = "clean, label, balance and split a review corpus into train/eval/test Parquet"
SPLITS = ("train", "eval", "test")


@dataclass
class PrepareConfig:
    """What to read, how to label it, and how to split it."""

    input: str = field(metadata={"help": "raw reviews Parquet (columns text, rating; local path or fsspec URI)"})
    output: str = field(metadata={"help": "folder or URI (s3://, gs://, ...) for train/eval/test.parquet, labels.json, summary.json"})
    scheme: str = field(default="binary", metadata={"help": "rating → label rule: binary is NSMC's (1-4 neg, 9-10 pos); ternary adds 5-8 neutral", "choices": ["binary", "ternary"]})
    eval_fraction: float = field(default=0.1, metadata={"help": "share of rows in the eval split"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of rows in the test split"})
    balance: bool = field(default=True, metadata={"help": "downsample every class to the size of the smallest"})
    limit: int | None = field(default=None, metadata={"help": "read only the first N input rows (quick runs)"})
    sample: int | None = field(default=None, metadata={"help": "keep N rows in total after balancing, equally per class"})
    seed: int = field(default=0, metadata={"help": "seed of balancing, sampling and splitting"})

    def __post_init__(self) -> None:
        if self.eval_fraction < 0 or self.test_fraction < 0 or self.eval_fraction + self.test_fraction >= 1:
            raise ValueError("eval and test fractions must be non-negative and leave rows for training")
        for name in ("limit", "sample"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be positive, got {value}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["nsmc"], help="corpus format (nsmc: Naver movie reviews with 1-10 ratings)")
    add_dataclass_arguments(parser, PrepareConfig, "prepare")


def run(args: argparse.Namespace) -> int:
    summary = prepare(dataclass_from_args(PrepareConfig, args))
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def read_reviews(path: str, limit: int | None):
    """`text` and `rating` (plus `review_id` when present) of the first `limit` rows."""
    import pyarrow.parquet as pq

    schema_names = pq.read_schema(path).names if "://" not in path else None
    wanted = ["review_id", "text", "rating"]
    columns = [c for c in wanted if schema_names is None or c in schema_names]
    missing = {"text", "rating"} - set(columns)
    if missing:
        raise ValueError(f"{path} has no column(s) {sorted(missing)}; it has {schema_names}")
    frame = pq.read_table(path, columns=columns).to_pandas()
    return frame.head(limit) if limit else frame


def clean(frame, scheme) -> tuple:
    """Drop null/empty texts, unlabelled ratings and duplicate texts; return the frame and drop counts."""
    import numpy as np

    dropped = {}
    text = frame["text"].astype("string").str.strip()
    empty = text.isna() | (text == "")
    dropped["null_or_empty_text"] = int(empty.sum())
    frame = frame.assign(text=text)[~empty]
    labels = scheme.label_of(frame["rating"].to_numpy(dtype=np.float64, na_value=np.nan))
    dropped["rating_left_out_by_scheme"] = int((labels < 0).sum())
    frame = frame.assign(label=labels)[labels >= 0]
    label_count = frame.groupby("text")["label"].transform("nunique")
    conflicting = label_count > 1
    dropped["duplicate_text_conflicting_labels"] = int(conflicting.sum())
    frame = frame[~conflicting]
    duplicate = frame.duplicated("text", keep="first")
    dropped["duplicate_text"] = int(duplicate.sum())
    return frame[~duplicate], dropped


def balance_and_sample(frame, num_labels: int, balance: bool, sample: int | None, seed: int) -> tuple:
    """Downsample each class to the smallest (if `balance`), then to `sample // num_labels` per class."""
    counts = frame["label"].value_counts()
    per_class = {label: int(counts.get(label, 0)) for label in range(num_labels)}
    if min(per_class.values()) == 0:
        raise ValueError(f"a class has no rows after cleaning: {per_class}")
    target = {label: (min(per_class.values()) if balance else n) for label, n in per_class.items()}
    dropped = {"balancing": sum(per_class.values()) - sum(target.values()), "sampling": 0}
    if sample is not None:
        capped = {label: min(n, sample // num_labels) for label, n in target.items()}
        dropped["sampling"] = sum(target.values()) - sum(capped.values())
        target = capped
    parts = [
        frame[frame["label"] == label].sample(n=n, random_state=seed + label) for label, n in target.items()
    ]
    import pandas as pd

    return pd.concat(parts), dropped


def split(frame, eval_fraction: float, test_fraction: float, seed: int) -> dict:
    """Stratified split: each class is cut in the same proportions; each split is shuffled."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    parts = {name: [] for name in SPLITS}
    for _, rows in frame.groupby("label"):
        rows = rows.iloc[rng.permutation(len(rows))]
        n_eval, n_test = int(round(len(rows) * eval_fraction)), int(round(len(rows) * test_fraction))
        parts["eval"].append(rows.iloc[:n_eval])
        parts["test"].append(rows.iloc[n_eval : n_eval + n_test])
        parts["train"].append(rows.iloc[n_eval + n_test :])
    result = {}
    for name, pieces in parts.items():
        joined = pd.concat(pieces)
        result[name] = joined.iloc[rng.permutation(len(joined))].reset_index(drop=True)
    return result


def prepare(config: PrepareConfig) -> dict:
    """Run every stage and write the splits; returns the summary also written to `summary.json`."""
    from kobert_ops.nsmc import scheme as rating_scheme

    scheme = rating_scheme(config.scheme)
    raw = read_reviews(config.input, config.limit)
    frame, dropped = clean(raw, scheme)
    frame, more_dropped = balance_and_sample(frame, len(scheme.labels), config.balance, config.sample, config.seed)
    dropped.update(more_dropped)
    splits = split(frame, config.eval_fraction, config.test_fraction, config.seed)
    label_names = list(scheme.labels)
    summary = {
        "input": config.input,
        "input_rows": len(raw),
        "dropped": dropped,
        "kept_rows": int(sum(len(rows) for rows in splits.values())),
        "splits": {},
        "labels": label_names,
        "config": asdict(config),
    }
    with staged_output(config.output) as output:  # a URI (s3://, gs://) gets the files once all are written
        for name, rows in splits.items():
            rows = rows.assign(label=rows["label"].astype("int64"),
                               label_name=[label_names[i] for i in rows["label"]])
            columns = [c for c in ("review_id", "text", "label", "label_name", "rating") if c in rows]
            rows[columns].to_parquet(output / f"{name}.parquet", index=False)
            summary["splits"][name] = {label_names[k]: int(v)
                                       for k, v in sorted(rows["label"].value_counts().items())}
        (output / "labels.json").write_text(json.dumps(
            {"scheme": config.scheme, "labels": label_names, "rating_ranges": [list(r) for r in scheme.ranges]},
            ensure_ascii=False, indent=2) + "\n")
        (output / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary
