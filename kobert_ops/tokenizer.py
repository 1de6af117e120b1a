"""KoBERT tokenizer, id-for-id equal to SKT's published `KoBERTTokenizer`, built on `sentencepiece` itself.

SKT's Hugging Face tokenizer subclasses transformers' `XLNetTokenizer`, which in transformers 5 no longer
tokenizes like SentencePiece on KoBERT's model; so the pieces come from the `sentencepiece` library and the
XLNet text rules are re-implemented here (see `../shared/kobert/README.md` for the reference behaviour):

1. preprocess: strip, collapse whitespace runs, ``` `` ```/`''` → `"`, NFKD, drop combining characters;
2. SentencePiece pieces; a piece such as `▁1,` (digits then a comma) is re-split into digits and `,`;
3. ids through the gluonnlp vocabulary (8,002 ids), then `[CLS] … [SEP]`.

`legacy=True` reproduces the gluonnlp `BERTSPTokenizer` path used by the KoBERT NSMC notebooks: raw
SentencePiece pieces of the unprocessed text (neither step 1 nor the XLNet-only re-split of step 2).

Encoding a batch runs SentencePiece over all texts at once in C++ and maps SentencePiece ids to KoBERT ids
through a lookup table, so tokenization stays far from being a pipeline's bottleneck.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import sentencepiece as spm

from kobert_ops import hub
from kobert_ops.batching import encoded_batch

SPIECE_UNDERLINE = "\u2581"
UNK, PAD, CLS, SEP, MASK = "[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (UNK, PAD, CLS, SEP, MASK)
CONFIG_NAME = "tokenizer_config.json"
HF_SPIECE_NAME = "spiece.model"
HF_TOKENIZER_NAME = "tokenizer.json"
NOT_VOCABULARIES = (CONFIG_NAME, "config.json", "special_tokens_map.json", HF_TOKENIZER_NAME)
# tokenizer_config.json's `tokenizer_class` of SKT's hub tokenizer and of the directories this project saves
KOBERT_TOKENIZER_CLASSES = ("KoBERTTokenizer", "kobert_ops.tokenizer.KoBERTTokenizer")


@lru_cache(maxsize=1)
def _combining_characters() -> re.Pattern[str]:
    """A regex matching every code point with a non-zero canonical combining class (built once, ~0.2 s)."""
    ranges: list[str] = []
    start = None
    for code_point in range(sys.maxunicode + 1):
        combining = unicodedata.combining(chr(code_point)) != 0
        if combining and start is None:
            start = code_point
        elif not combining and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code_point - 1))}")
            start = None
    return re.compile(f"[{''.join(ranges)}]")


def build_tables() -> None:
    """Build `preprocess`'s tables now rather than on the first non-ASCII text (a label run's warm-up thread does,
    while the inputs are checked)."""
    _combining_characters()


def preprocess(text: str) -> str:
    """XLNet's `preprocess_text` with KoBERT's settings (remove_space, no lower-casing, drop accents)."""
    text = " ".join(text.strip().split())
    text = text.replace("``", '"').replace("''", '"')
    text = unicodedata.normalize("NFKD", text)
    if not text.isascii():
        text = _combining_characters().sub("", text)
    return text


def _ends_in_digit_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


class KoBERTTokenizer:
    """SKT KoBERT tokenizer: SentencePiece pieces mapped through KoBERT's 8,002-token vocabulary.

    Args:
        sentencepiece_model: path of the SentencePiece model file.
        idx_to_token: KoBERT's vocabulary in id order (`[UNK]`, `[PAD]`, `[CLS]`, `[SEP]`, `[MASK]`, pieces…).
        legacy: default for `encode`/`batch_encode`: the gluonnlp path without text preprocessing.
        vocab_path: the gluonnlp vocabulary JSON the ids came from, kept so `save_pretrained` can copy it.
    """

    def __init__(
        self,
        sentencepiece_model: str | os.PathLike,
        idx_to_token: Sequence[str],
        legacy: bool = False,
        vocab_path: str | os.PathLike | None = None,
    ) -> None:
        self.sentencepiece_model = Path(sentencepiece_model)
        self.vocab_path = Path(vocab_path) if vocab_path else None
        self.legacy = legacy
        self.idx_to_token = list(idx_to_token)
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        missing = [token for token in SPECIAL_TOKENS if token not in self.token_to_idx]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {missing}; is this a KoBERT vocabulary?")
        self.unk_token_id = self.token_to_idx[UNK]
        self.pad_token_id = self.token_to_idx[PAD]
        self.cls_token_id = self.token_to_idx[CLS]
        self.sep_token_id = self.token_to_idx[SEP]
        self.mask_token_id = self.token_to_idx[MASK]
        self._sp = spm.SentencePieceProcessor(model_file=str(self.sentencepiece_model))
        pieces = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
        # SentencePiece id -> KoBERT id; pieces absent from the vocabulary (<unk>, <s>, </s>) become [UNK].
        self._sp_to_kobert = np.array(
            [self.token_to_idx.get(piece, self.unk_token_id) for piece in pieces], dtype=np.int64
        )
        self._sp_to_kobert[self._sp.unk_id()] = self.unk_token_id
        self._digit_comma_ids = frozenset(i for i, piece in enumerate(pieces) if _ends_in_digit_comma(piece))

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, path_or_id: str | os.PathLike, legacy: bool = False) -> "KoBERTTokenizer":
        """Load from a directory (legacy pair or `skt/kobert-base-v1` layout) or a Hugging Face hub id.

        A legacy directory holds a SentencePiece `*.model` and a gluonnlp vocabulary `*.json`
        (`idx_to_token`); the hub layout holds `spiece.model`, whose piece ids already are KoBERT ids.
        """
        directory = hub.resolve(path_or_id, allow_patterns=hub.TOKENIZER_FILES)
        config_path = directory / CONFIG_NAME
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        vocab_path = _find_vocab(directory, config)
        if vocab_path is not None:
            model_name = config.get("sentencepiece_model")
            model_path = directory / model_name if model_name else _find_sentencepiece_model(directory)
            idx_to_token = json.loads(vocab_path.read_text(encoding="utf-8"))["idx_to_token"]
            return cls(model_path, idx_to_token, legacy=legacy, vocab_path=vocab_path)
        model_path = directory / HF_SPIECE_NAME
        if not model_path.exists():
            raise FileNotFoundError(
                f"{directory} holds no KoBERT tokenizer: expected a SentencePiece *.model with a gluonnlp "
                f"vocabulary *.json (as in shared/kobert), or {HF_SPIECE_NAME} (skt/kobert-base-v1 layout)"
            )
        processor = spm.SentencePieceProcessor(model_file=str(model_path))
        idx_to_token = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        return cls(model_path, idx_to_token, legacy=legacy)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the tokenizer files and a `tokenizer_config.json` into `directory`, next to model weights."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.sentencepiece_model, directory / self.sentencepiece_model.name)
        config = {
            "tokenizer_class": "kobert_ops.tokenizer.KoBERTTokenizer",
            "sentencepiece_model": self.sentencepiece_model.name,
            "do_lower_case": False,
            "remove_space": True,
            "keep_accents": False,
            "legacy": self.legacy,
            "special_tokens": {name: name for name in SPECIAL_TOKENS},
            "pad_token_id": self.pad_token_id,
        }
        if self.vocab_path is not None:
            shutil.copyfile(self.vocab_path, directory / self.vocab_path.name)
            config["vocab"] = self.vocab_path.name
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return directory

    # ------------------------------------------------------------------ encoding
    @property
    def vocab_size(self) -> int:
        return len(self.idx_to_token)

    @property
    def special_ids(self) -> list[int]:
        """Ids of `[UNK]`, `[PAD]`, `[CLS]`, `[SEP]`, `[MASK]` (never masked or drawn as random MLM pieces)."""
        return [self.token_to_idx[token] for token in SPECIAL_TOKENS]

    def tokenize(self, text: str, legacy: bool | None = None) -> list[str]:
        """KoBERT pieces of `text` (without `[CLS]`/`[SEP]`)."""
        return [self.idx_to_token[i] for i in self._piece_ids(text, self._mode(legacy)).tolist()]

    def encode(self, text: str, legacy: bool | None = None) -> list[int]:
        """`[CLS] pieces [SEP]` ids, identical to SKT's `KoBERTTokenizer.encode` (or gluonnlp's, if legacy)."""
        return [self.cls_token_id, *self._piece_ids(text, self._mode(legacy)).tolist(), self.sep_token_id]

    def batch_encode(
        self,
        texts: Iterable[str],
        max_length: int = 128,
        padding: str = "longest",
        legacy: bool | None = None,
        num_threads: int = -1,
    ) -> dict[str, np.ndarray]:
        """Encode many texts at once into padded numpy arrays.

        Truncation keeps `[SEP]`: a text keeps its first `max_length - 2` pieces. `padding="longest"` pads to
        the longest row of this batch, `"max_length"` to `max_length` (fixed shapes).

        Returns:
            `input_ids` (int64, [PAD]=1 padding), `attention_mask`, `token_type_ids` (all zeros),
            `valid_length` (ids before padding) and `truncated` (bool: pieces were cut off).
        """
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        legacy = self._mode(legacy)
        texts = list(texts)
        piece_ids = self._batch_piece_ids(texts, legacy, num_threads)
        budget = max_length - 2
        lengths = np.fromiter((min(len(ids), budget) + 2 for ids in piece_ids), dtype=np.int64, count=len(texts))
        truncated = np.fromiter((len(ids) > budget for ids in piece_ids), dtype=bool, count=len(texts))
        width = max_length if padding == "max_length" else int(lengths.max(initial=2))
        input_ids = np.full((len(texts), width), self.pad_token_id, dtype=np.int64)
        input_ids[:, 0] = self.cls_token_id
        for row, ids in enumerate(piece_ids):
            kept = min(len(ids), budget)
            input_ids[row, 1 : kept + 1] = ids[:kept]
            input_ids[row, kept + 1] = self.sep_token_id
        return encoded_batch(input_ids, lengths, truncated)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of KoBERT ids (pieces joined, `▁` turned back into spaces)."""
        special = {self.token_to_idx[token] for token in SPECIAL_TOKENS}
        pieces = [self.idx_to_token[i] for i in ids if not (skip_special_tokens and i in special)]
        return "".join(pieces).replace(SPIECE_UNDERLINE, " ").strip()

    # ------------------------------------------------------------------ internals
    def _mode(self, legacy: bool | None) -> bool:
        return self.legacy if legacy is None else legacy

    def _piece_ids(self, text: str, legacy: bool) -> np.ndarray:
        # A plain string, not a list of one: sentencepiece's list path starts worker threads per call.
        sp_ids = self._sp.encode(text if legacy else preprocess(text), out_type=int)
        return self._to_kobert_ids(sp_ids, legacy)

    def _batch_piece_ids(self, texts: list[str], legacy: bool, num_threads: int) -> list[np.ndarray]:
        if not legacy:
            texts = [preprocess(text) for text in texts]
        sp_ids = self._sp.encode(texts, out_type=int, num_threads=num_threads)
        return [self._to_kobert_ids(ids, legacy) for ids in sp_ids]

    def _to_kobert_ids(self, sp_ids: list[int], legacy: bool) -> np.ndarray:
        if not legacy and not self._digit_comma_ids.isdisjoint(sp_ids):
            return self._resplit_digit_commas(sp_ids)
        return self._sp_to_kobert[np.asarray(sp_ids, dtype=np.int64)]

    def _resplit_digit_commas(self, sp_ids: list[int]) -> np.ndarray:
        """XLNet's rule: `▁1,` → `▁1` `,`; the digits re-encoded alone, without a marker they did not have."""
        kobert_ids: list[int] = []
        for sp_id in sp_ids:
            if sp_id not in self._digit_comma_ids:
                kobert_ids.append(int(self._sp_to_kobert[sp_id]))
                continue
            piece = self._sp.id_to_piece(sp_id)
            sub_pieces = self._sp.encode(piece[:-1].replace(SPIECE_UNDERLINE, ""), out_type=str)
            if piece[0] != SPIECE_UNDERLINE and sub_pieces and sub_pieces[0][0] == SPIECE_UNDERLINE:
                if len(sub_pieces[0]) == 1:
                    sub_pieces = sub_pieces[1:]
                else:
                    sub_pieces[0] = sub_pieces[0][1:]
            sub_pieces.append(",")
            kobert_ids.extend(self.token_to_idx.get(p, self.unk_token_id) for p in sub_pieces)
        return np.asarray(kobert_ids, dtype=np.int64)


def _find_vocab(directory: Path, config: dict) -> Path | None:
    """The gluonnlp vocabulary JSON in `directory`, if any (named in the config, or found by content)."""
    if config.get("vocab"):
        return directory / config["vocab"]
    for candidate in sorted(directory.glob("*.json")):
        if candidate.name in NOT_VOCABULARIES:
            continue
        try:
            content = json.loads(candidate.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        # a BPE vocab.json is a dict of pieces too: only gluonnlp's has a *list* under idx_to_token
        if isinstance(content, dict) and isinstance(content.get("idx_to_token"), list):
            return candidate
    return None


def _find_sentencepiece_model(directory: Path) -> Path:
    models = sorted(p for p in directory.glob("*.model") if p.name != HF_SPIECE_NAME) or sorted(
        directory.glob("*.model")
    )
    if not models:
        raise FileNotFoundError(f"{directory} has a gluonnlp vocabulary but no SentencePiece *.model file")
    return models[0]


def is_kobert_layout(directory: Path) -> bool:
    """True for KoBERT's own tokenizer files, which `transformers.AutoTokenizer` cannot read faithfully.

    Those are: a `tokenizer_config.json` naming `KoBERTTokenizer` (SKT's hub layout, or a directory this
    project saved), a gluonnlp vocabulary JSON (the legacy pair in shared/kobert; no other tokenizer has one), or
    a lone `spiece.model` with no `tokenizer.json` and no other tokenizer class named.
    """
    config_path = directory / CONFIG_NAME
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    named = config.get("tokenizer_class")
    if named in KOBERT_TOKENIZER_CLASSES:
        return True
    if _find_vocab(directory, config) is not None:
        return True
    return named is None and (directory / HF_SPIECE_NAME).exists() and not (directory / HF_TOKENIZER_NAME).exists()


def load_tokenizer(reference: str | os.PathLike):
    """The tokenizer of a model directory, a tokenizer directory or a hub id.

    KoBERT's own files (the legacy SentencePiece + gluonnlp pair, or the `skt/kobert-base-v1` layout) give a
    `KoBERTTokenizer`; any other encoder's files give an `AutoTokenizerAdapter` over `transformers.AutoTokenizer`.
    Both have `batch_encode(texts, max_length, padding, num_threads)`, `encode(text)`, `pad_token_id`,
    `mask_token_id`, `vocab_size`, `special_ids` and `save_pretrained(directory)`.
    """
    directory = hub.resolve(reference, allow_patterns=hub.TOKENIZER_FILES)
    if is_kobert_layout(directory):
        return KoBERTTokenizer.from_pretrained(directory)
    if not any((directory / name).exists() for name in (HF_TOKENIZER_NAME, CONFIG_NAME, "vocab.txt", "vocab.json")):
        raise FileNotFoundError(
            f"{reference} holds no tokenizer: expected tokenizer.json (or vocab.txt / vocab.json with "
            "tokenizer_config.json), KoBERT's SentencePiece *.model with its gluonnlp vocabulary *.json, or "
            f"{HF_SPIECE_NAME}; pass the model's own tokenizer with --tokenizer"
        )
    from kobert_ops.auto_tokenizer import AutoTokenizerAdapter

    return AutoTokenizerAdapter.from_pretrained(directory)
