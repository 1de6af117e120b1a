"""`kobert demo`: fine-tune a tiny model on local Ray, label 20,000 other real Naver movie reviews with it,
print the summary and how often the labels agree with the reviewers' own star ratings.

    kobert demo                      # about 2 minutes on 2 cores the first time
    kobert demo --rows 100000 --engine ray
    kobert demo --model artifacts/nsmc/model

The model: `--model` if given, else `artifacts/nsmc/model` when `kobert recipe nsmc` has produced it, else a
`tiny` model the demo fine-tunes once (Ray Train, 2 epochs) on `--train-rows` balanced NSMC-style reviews from
the end of `$KOBERT_SHARED/data/nsmc/reviews.parquet`, into `artifacts/demo/model`. A random model would label
every review alike; a minute of training makes the labels mean something. The demo labels the first `--rows`
reviews (never trained on) into `artifacts/demo/labels`, replacing an earlier demo output.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.args import add_dataclass_arguments, dataclass_from_args

HELP = "label 20,000 real NSMC reviews end to end on local Ray and print the summary"


@dataclass
class DemoConfig:
    """Demo run."""

    rows: int = field(default=20_000, metadata={"help": "how many reviews to label"})
    artifacts: str = field(default="artifacts", metadata={"help": "folder for the demo's model, input and output"})
    engine: str = field(default="ray", metadata={"help": "ray (local Ray Data pipeline) or local (in-process)",
                                                 "choices": ["ray", "local", "auto"]})
    actors: str = field(default="1", metadata={"help": "model actors: N or MIN,MAX"})
    model: str | None = field(default=None, metadata={"help": "model to label with (default: artifacts/nsmc/model, else a tiny model the demo fine-tunes once)"})
    train_rows: int = field(default=10_000, metadata={"help": "reviews the demo's own tiny model is fine-tuned on (from the end of the file)"})
    train_epochs: int = field(default=2, metadata={"help": "epochs of that fine-tuning"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, DemoConfig, "demo")


def run(args: argparse.Namespace) -> int:
    return demo(dataclass_from_args(DemoConfig, args))


def demo_model(config: DemoConfig, source: Path) -> Path:
    """`--model`, the recipe's trained model, the demo's cached model, or a newly fine-tuned tiny one."""
    artifacts = Path(config.artifacts)
    if config.model:
        return Path(config.model)
    trained = artifacts / "nsmc" / "model"
    if (trained / "config.json").exists():
        print(f"using the NSMC recipe's model {trained}")
        return trained
    model = artifacts / "demo" / "model"
    if (model / "config.json").exists() and (model / "metrics.json").exists():
        print(f"using the demo's fine-tuned model {model}")
        return model
    return fine_tune_demo_model(config, source, model)


def fine_tune_demo_model(config: DemoConfig, source: Path, model: Path) -> Path:
    """Prepare balanced NSMC-style training data from the file's last reviews and fine-tune `tiny` on it."""
    import shutil

    import pyarrow.parquet as pq

    from pipelines.prepare import PrepareConfig, prepare
    from pipelines.train.run import train
    from pipelines.train.config import ClusterConfig, DataConfig, ModelConfig, TrainingConfig, TrainJob

    work = Path(config.artifacts) / "demo"
    if model.exists():  # an interrupted fine-tuning (or an old random demo model): start over
        shutil.rmtree(model)
    file = pq.ParquetFile(source)
    tail_rows = min(4 * config.train_rows, file.metadata.num_rows - config.rows)  # ~half survive rule + balance
    if tail_rows < 100:
        raise ValueError(f"the review file has too few rows beyond the {config.rows:,} to label to train on")
    tail = work / "train-source.parquet"
    tail.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pq.read_table(source).slice(file.metadata.num_rows - tail_rows), tail)
    data = work / "data"
    prepared = prepare(PrepareConfig(input=str(tail), output=str(data), sample=config.train_rows,
                                     eval_fraction=0.1, test_fraction=0.0))
    print(f"fine-tuning a tiny model on {sum(prepared['splits']['train'].values()):,} reviews (other than the ones to label) "
          f"for {config.train_epochs} epoch(s) on local Ray")
    summary = train(TrainJob(
        model=ModelConfig(model="tiny"),
        data=DataConfig(train=str(data / "train.parquet"), eval=str(data / "eval.parquet"), max_length=64),
        training=TrainingConfig(epochs=config.train_epochs, batch_size=32),
        cluster=ClusterConfig(output=str(model), num_workers=1),
    ))
    print(f"fine-tuned: eval accuracy {summary['best']['eval_accuracy']:.3f} ({model}/report.md)")
    return model


def demo_input(artifacts: Path, rows: int) -> Path:
    """The first `rows` NSMC reviews as one Parquet file (rewritten when `rows` changes)."""
    import pyarrow.parquet as pq

    from kobert_ops import paths

    source = paths.require(paths.nsmc_reviews(), "NSMC reviews", paths.NSMC_HELP)
    target = artifacts / "demo" / "input" / f"reviews-{rows}.parquet"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        head = next(pq.ParquetFile(source).iter_batches(batch_size=rows))
        pq.write_table(__import__("pyarrow").Table.from_batches([head]), target)
    return target


def rating_agreement(output: Path) -> tuple[float, int] | None:
    """Share of labeled reviews whose label matches the NSMC rule on their own rating (1-4 부정, 9-10 긍정;
    5-8 left out), and how many reviews that covers. None when the model's labels are not NSMC's."""
    import json

    import pyarrow.dataset as pads

    from kobert_ops.nsmc import scheme

    rule = scheme("binary")
    files = json.loads((output / "_SUCCESS").read_text())["files"]["labeled"]  # the committed rows, as documented
    table = pads.dataset([str(output / f) for f in files], format="parquet").to_table(columns=["label_name", "rating"])
    expected = rule.label_of(table["rating"].to_numpy(zero_copy_only=False))
    names = table["label_name"].to_pylist()
    if not set(names) <= set(rule.labels):
        return None
    got = [rule.labels.index(name) for name in names]
    pairs = [(e, g) for e, g in zip(expected.tolist(), got) if e >= 0]
    return (sum(e == g for e, g in pairs) / len(pairs), len(pairs)) if pairs else None


def demo(config: DemoConfig) -> int:
    from kobert_ops import paths
    from pipelines.label.command import label
    from pipelines.label.config import LabelConfig

    artifacts = Path(config.artifacts)
    reviews = demo_input(artifacts, config.rows)  # first: without ../shared it says how to get NSMC
    model = demo_model(config, paths.nsmc_reviews())
    output = artifacts / "demo" / "labels"
    print(f"labeling {config.rows:,} real reviews from {reviews} into {output} (engine {config.engine})")
    code = label(LabelConfig(model=str(model), input=[str(reviews)], output=str(output), text_column="text",
                             id_column="review_id", pass_through=["movie_id", "rating"], engine=config.engine,
                             actors=config.actors, overwrite=True))
    agreement = rating_agreement(output) if code == 0 else None
    if agreement:
        print(f"  agreement with the reviewers' star ratings (NSMC rule, 5-8 stars left out): "
              f"{agreement[0]:.1%} of {agreement[1]:,} reviews")
    return code
