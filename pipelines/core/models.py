"""Driver-side defaults that depend on the model: which tokenizer goes with it, and its learning rate.

A model is a preset (random weights, KoBERT's vocabulary), a local directory, an object-storage URI or a hub
id; the driver pins a hub id to its commit and a URI to its files' digest (`pinned`), so every worker loads
what the driver checked. A directory, URI or hub id brings its own tokenizer (`skt/kobert-base-v1` ships `spiece.model`; RoBERTa and ELECTRA encoders ship
`tokenizer.json`), so only a preset falls back to the shared KoBERT files.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.storage import absolute

# random-init presets need a much larger step than pretrained weights
SCRATCH_LEARNING_RATE = 1e-3
# (smallest hidden width, learning rate): BERT-base's 5e-5 from 768 up; the NSMC recipe's small (256-wide)
# encoder pretrained with `kobert pretrain` is fine-tuned at 5e-4, the recipe's own setting
PRETRAINED_LEARNING_RATES = ((768, 5e-5), (512, 1e-4), (0, 5e-4))


def is_preset(model: str) -> bool:
    from kobert_ops.model import PRESETS

    return model in PRESETS


def local_model(model: str) -> str:
    """An existing local folder as an absolute path; presets, hub ids and URIs unchanged."""
    return absolute(model) if not is_preset(model) and Path(model).expanduser().exists() else model


def pinned(reference: str) -> str:
    """What every node should load for `reference`: a preset's name; an existing folder's absolute path; a
    hub id at the commit resolved now (`owner/name@<commit>`); a URI with its files' digest (`…#sha256=`)."""
    from kobert_ops import hub

    return reference if is_preset(reference) else hub.pin(local_model(reference), hub.MODEL_FILES)


def local_folder(reference: str) -> str | None:
    """`reference` when it names a folder on this machine (not a preset, hub id or URI), else None."""
    return reference if not is_preset(reference) and Path(reference).expanduser().is_dir() else None


def resolve_tokenizer(model: str, tokenizer: str | None) -> str:
    """`--tokenizer` (pinned), else the model's own (as pinned: each node resolves it), else for a preset
    `$KOBERT_SHARED/kobert`. `check_vocabulary` then loads it, failing in one line if it is missing."""
    from kobert_ops import paths

    if tokenizer:
        return pinned(tokenizer)
    if is_preset(model):
        return str(paths.require(paths.kobert_tokenizer_dir(), "KoBERT tokenizer (for a preset model)").resolve())
    return model


def model_config(model: str):
    """The model's `transformers` config (a preset's is built, not read)."""
    from kobert_ops.model import bert_config, load_config

    return bert_config(model) if is_preset(model) else load_config(model)


def default_learning_rate(model: str, scratch: float = SCRATCH_LEARNING_RATE) -> float:
    """`scratch` for a preset; for pretrained weights, by the encoder's hidden width."""
    if is_preset(model):
        return scratch
    width = int(getattr(model_config(model), "hidden_size", 768))
    return next(rate for smallest, rate in PRETRAINED_LEARNING_RATES if width >= smallest)


def check_vocabulary(model: str, tokenizer_ref: str) -> None:
    """Refuse, before any worker starts, a tokenizer whose ids the model's embedding table cannot hold."""
    from kobert_ops.model import check_vocabulary as check
    from kobert_ops.tokenizer import load_tokenizer

    check(model_config(model), load_tokenizer(tokenizer_ref), model, tokenizer_ref)
