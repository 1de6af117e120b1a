"""Build, load and save sequence classifiers: KoBERT-architecture ones built here, and any BERT-, RoBERTa- or
ELECTRA-family checkpoint loaded through `transformers`' Auto classes.

A model directory is a plain `transformers` directory (`config.json` with `id2label`/`label2id`,
`model.safetensors`) plus its tokenizer's files (KoBERT's own, or the encoder's `tokenizer.json`), so labeling
jobs read label names from the checkpoint and `AutoModelForSequenceClassification.from_pretrained(DIR)` loads
it as it is.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from kobert_ops import hub

log = logging.getLogger(__name__)

KOBERT_VOCAB_SIZE = 8002
KOBERT_PAD_ID = 1


@dataclass(frozen=True)
class Preset:
    """Encoder shape of a KoBERT-architecture model."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    max_positions: int = 512


PRESETS: dict[str, Preset] = {
    # For tests and quick local runs: seconds to train on a laptop CPU.
    "tiny": Preset(layers=2, hidden=128, heads=2, intermediate=512),
    # A small model that still learns NSMC well on CPU in under an hour.
    "small": Preset(layers=4, hidden=256, heads=4, intermediate=1024),
    # SKT KoBERT-base: BERT-base with KoBERT's 8,002-token vocabulary.
    "base": Preset(layers=12, hidden=768, heads=12, intermediate=3072),
}


def label_maps(labels: Sequence[str]) -> tuple[dict[int, str], dict[str, int]]:
    """`id2label`/`label2id` for label names given in id order."""
    labels = [str(label).strip() for label in labels]
    if len(labels) < 2:
        raise ValueError(f"a classifier needs at least two labels, got {labels}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"label names must be unique, got {labels}")
    return dict(enumerate(labels)), {label: idx for idx, label in enumerate(labels)}


def bert_config(preset: str, labels: Sequence[str] | None = None, dropout: float = 0.1, *,
                vocab_size: int = KOBERT_VOCAB_SIZE, pad_token_id: int = KOBERT_PAD_ID):
    """A `BertConfig` of a preset; KoBERT's vocabulary and padding id unless another tokenizer's are given."""
    from transformers import BertConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    shape = PRESETS[preset]
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=shape.max_positions,
        type_vocab_size=2,
        pad_token_id=pad_token_id,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    if labels is not None:
        config.id2label, config.label2id = label_maps(labels)
        config.num_labels = len(config.id2label)
    return config


def build_classifier(preset: str, labels: Sequence[str], seed: int | None = 0, *,
                     vocab_size: int = KOBERT_VOCAB_SIZE, pad_token_id: int = KOBERT_PAD_ID):
    """A randomly initialised `BertForSequenceClassification` of a preset: pooled [CLS] → dropout → linear.

    Its embeddings fit KoBERT's 8,002 ids unless `vocab_size`/`pad_token_id` of another tokenizer are given.
    """
    import torch
    from transformers import BertForSequenceClassification

    if seed is not None:
        torch.manual_seed(seed)
    config = bert_config(preset, labels, vocab_size=vocab_size, pad_token_id=pad_token_id)
    config.problem_type = "single_label_classification"
    return BertForSequenceClassification(config)


def load_config(path_or_id: str | os.PathLike):
    """A checkpoint's `config.json` (an `AutoConfig`), without its weights: cheap checks before loading them."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(hub.resolve(path_or_id, allow_patterns=hub.MODEL_FILES))


def load_classifier(path_or_id: str | os.PathLike, labels: Sequence[str] | None = None):
    """Load a BERT-, RoBERTa- or ELECTRA-family classifier from a directory or hub id.

    A checkpoint that is an encoder only (`skt/kobert-base-v1` ships a `BertModel`; others ship `RobertaModel`,
    `ElectraModel` or a `*ForMaskedLM`) gets a fresh classification head for `labels`. Given `labels` that
    differ from a classifier's own, the head is re-initialised for them (a new task on a fine-tuned encoder).
    `AutoModelForSequenceClassification` picks the architecture's own head from `config.json`.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    directory = hub.resolve(path_or_id, allow_patterns=hub.MODEL_FILES)
    config = AutoConfig.from_pretrained(directory)
    is_classifier = any(arch.endswith("ForSequenceClassification") for arch in config.architectures or [])
    own_labels = [config.id2label[i] for i in sorted(config.id2label)] if is_classifier else None
    if labels is None:
        if own_labels is None:
            raise ValueError(f"{path_or_id} is an encoder without a classification head: pass the label names")
        labels = own_labels
    id2label, label2id = label_maps(labels)
    new_head = list(labels) != own_labels
    if new_head:
        log.info("%s: new classification head for labels %s", path_or_id, list(labels))
    return AutoModelForSequenceClassification.from_pretrained(
        directory,
        num_labels=len(id2label),
        id2label=id2label,
        label2id=label2id,
        problem_type="single_label_classification",
        ignore_mismatched_sizes=new_head,
    )


def check_vocabulary(model_config, tokenizer, model_ref: str = "", tokenizer_ref: str = "") -> None:
    """Refuse a tokenizer that can produce ids past the model's embedding table.

    Such ids crash the forward pass with an index error deep in torch, or, on some devices, silently read
    other memory; a tokenizer of another model is the usual cause (KoBERT's 8,002 ids with another encoder).

    Raises:
        ValueError: one line naming both sizes and both references.
    """
    if tokenizer.vocab_size > model_config.vocab_size:
        raise ValueError(
            f"tokenizer {tokenizer_ref or type(tokenizer).__name__} produces {tokenizer.vocab_size:,} ids but model "
            f"{model_ref or model_config.model_type} embeds only {model_config.vocab_size:,}: they do not belong "
            "together; pass the model's own tokenizer with --tokenizer"
        )


def save_classifier(model, tokenizer, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Save weights (safetensors), config and tokenizer into one directory; `extra` goes to `kobert.json`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    if extra is not None:
        (directory / "kobert.json").write_text(json.dumps(extra, indent=2, ensure_ascii=False) + "\n")
    return directory


def labels_of(model) -> list[str]:
    """Label names of a classifier in id order."""
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())
