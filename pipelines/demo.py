"""`kobert demo`: label 20,000 real Naver movie reviews on a local Ray, end to end, and print the summary.

    kobert demo                      # tiny random model unless artifacts/nsmc/model (trained) exists
    kobert demo --rows 100000 --engine ray

It uses `artifacts/nsmc/model` when training has produced it, else builds (once) a tiny randomly
initialised model under `artifacts/demo/model` (its labels are then meaningless; the pipeline is the point).
It takes the first `--rows` reviews of `$KOBERT_SHARED/data/nsmc/reviews.parquet` into
`artifacts/demo/input/`, labels them into `artifacts/demo/labels` (replacing an earlier demo output).
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, DemoConfig, "demo")


def run(args: argparse.Namespace) -> int:
    return demo(dataclass_from_args(DemoConfig, args))


def demo_model(artifacts: Path) -> Path:
    """The trained NSMC model if there is one, else the (cached) tiny random model."""
    trained = artifacts / "nsmc" / "model"
    if (trained / "config.json").exists():
        print(f"using the trained model {trained}")
        return trained
    model = artifacts / "demo" / "model"
    if not (model / "config.json").exists():
        from pipelines.init_model import InitModelConfig, init_model

        init_model(InitModelConfig(output=str(model), preset="tiny"))
    print(f"using {model} (tiny, random weights: labels are not meaningful; train one into {trained})")
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


def demo(config: DemoConfig) -> int:
    from pipelines.label.command import label
    from pipelines.label.config import LabelConfig

    artifacts = Path(config.artifacts)
    reviews = demo_input(artifacts, config.rows)  # first: without ../shared it says how to get NSMC
    model = demo_model(artifacts)
    output = artifacts / "demo" / "labels"
    print(f"labeling {config.rows:,} real reviews from {reviews} into {output} (engine {config.engine})")
    return label(LabelConfig(model=str(model), input=[str(reviews)], output=str(output), text_column="text",
                             id_column="review_id", pass_through=["movie_id", "rating"], engine=config.engine,
                             actors=config.actors, overwrite=True))
