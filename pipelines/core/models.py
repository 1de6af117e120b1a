"""Driver-side defaults that depend on the model: which tokenizer goes with it, and its learning rate.

A model is a preset (random weights, KoBERT's vocabulary), a local directory or a hub id. A directory or
hub id brings its own tokenizer (`skt/kobert-base-v1` ships `spiece.model`; RoBERTa and ELECTRA encoders ship
`tokenizer.json`), so only a preset falls back to the shared KoBERT files.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.storage import absolute

TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "spiece.model", "vocab.txt", "sentencepiece.bpe.model")
TOKENIZER_PATTERNS = ["*.json", "*.model", "*.txt"]
# random-init presets need a much larger step than pretrained weights
SCRATCH_LEARNING_RATE = 1e-3
# (smallest hidden width, learning rate): BERT-base's 5e-5 from 768 up; the NSMC recipe's small (256-wide)
# encoder pretrained with `kobert pretrain` fine-tunes well at 5e-4 and barely moves at 5e-5
PRETRAINED_LEARNING_RATES = ((768, 5e-5), (512, 1e-4), (0, 5e-4))


def is_preset(model: str) -> bool:
    from kobert_ops.model import PRESETS

    return model in PRESETS


def local_model(model: str) -> str:
    """An existing local folder as an absolute path; presets, hub ids and URIs unchanged."""
    return absolute(model) if not is_preset(model) and Path(model).expanduser().exists() else model


def has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES) or any(directory.glob("*.model"))


def resolve_tokenizer(model: str, tokenizer: str | None) -> str:
    """`--tokenizer`, else the model's own (folder or hub id, as given), else for a preset `$KOBERT_SHARED/kobert`.

    Raises:
        FileNotFoundError: a model folder or hub snapshot without tokenizer files, or no shared KoBERT files.
    """
    from kobert_ops import hub, paths

    if tokenizer:
        return local_model(tokenizer)
    if is_preset(model):
        return str(paths.require(paths.kobert_tokenizer_dir(), "KoBERT tokenizer (for a preset model)").resolve())
    if not has_tokenizer(hub.resolve(model, allow_patterns=TOKENIZER_PATTERNS)):
        raise FileNotFoundError(f"{model} has no tokenizer files ({', '.join(TOKENIZER_FILES)}): pass --tokenizer")
    return model


def model_config(model: str):
    """The model's `transformers` config (a preset's is built, not read)."""
    from transformers import AutoConfig

    from kobert_ops import hub
    from kobert_ops.model import bert_config

    if is_preset(model):
        return bert_config(model)
    return AutoConfig.from_pretrained(hub.resolve(model, allow_patterns=["*.json"]))


def default_learning_rate(model: str, scratch: float = SCRATCH_LEARNING_RATE) -> float:
    """`scratch` for a preset; for pretrained weights, by the encoder's hidden width."""
    if is_preset(model):
        return scratch
    width = int(getattr(model_config(model), "hidden_size", 768))
    return next(rate for smallest, rate in PRETRAINED_LEARNING_RATES if width >= smallest)


def check_vocabulary(model: str, tokenizer_ref: str) -> None:
    """Refuse a tokenizer whose ids the model's embedding table cannot hold (a silent index error later)."""
    from kobert_ops.tokenizer import load_tokenizer

    tokenizer_size = load_tokenizer(tokenizer_ref).vocab_size
    model_size = int(model_config(model).vocab_size)
    if tokenizer_size > model_size:
        raise ValueError(f"the tokenizer {tokenizer_ref} has {tokenizer_size:,} ids but the model {model} only "
                         f"{model_size:,}: pass the model's own tokenizer with --tokenizer")
