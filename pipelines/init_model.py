"""`kobert init-model`: write a randomly initialised BERT-architecture classifier directory (KoBERT's by default).

    kobert init-model --preset base --tokenizer ../shared/kobert --labels 부정,긍정 --output models/base-random

Real KoBERT weights cannot be downloaded everywhere; tests, benchmarks and demos use these directories,
which load like any fine-tuned checkpoint (plain `transformers` included).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from pipelines.args import add_dataclass_arguments, dataclass_from_args

HELP = "write a randomly initialised classifier directory (model + tokenizer + labels)"


@dataclass
class InitModelConfig:
    """Model to create."""

    output: str = field(metadata={"help": "directory to write"})
    preset: str = field(default="tiny", metadata={"help": "encoder size", "choices": ["tiny", "small", "base"]})
    labels: list[str] = field(default_factory=lambda: ["부정", "긍정"], metadata={"help": "label names in id order, comma-separated"})
    tokenizer: str | None = field(default=None, metadata={
        "help": "tokenizer directory or hub id: KoBERT's, or another encoder's own (the embeddings are sized to it; "
                "default: $KOBERT_SHARED/kobert)"})
    seed: int = field(default=0, metadata={"help": "random seed of the weights"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, InitModelConfig, "model")


def run(args: argparse.Namespace) -> int:
    config = dataclass_from_args(InitModelConfig, args)
    return init_model(config)


def init_model(config: InitModelConfig) -> int:
    from kobert_ops import paths
    from kobert_ops.model import build_classifier, parameter_count, save_classifier
    from kobert_ops.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(config.tokenizer or paths.kobert_tokenizer_dir())
    # the embeddings fit the tokenizer: KoBERT's 8,002 ids, or another encoder's own vocabulary and [PAD]
    model = build_classifier(config.preset, config.labels, seed=config.seed, vocab_size=tokenizer.vocab_size,
                             pad_token_id=tokenizer.pad_token_id)
    extra = {"preset": config.preset, "seed": config.seed, "trained": False}
    save_classifier(model, tokenizer, config.output, extra=extra)
    print(f"wrote {config.preset} classifier ({parameter_count(model) / 1e6:.1f}M parameters, "
          f"labels {config.labels}) to {config.output}")
    return 0
