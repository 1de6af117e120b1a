"""Any other encoder's tokenizer (BERT, RoBERTa, ELECTRA, ...) behind `KoBERTTokenizer`'s interface.

Pipelines call `batch_encode` and read `pad_token_id`, `mask_token_id`, `vocab_size`, `special_ids`; this
adapter gives those over a `transformers.AutoTokenizer` so a pipeline never asks which kind it holds.
Encoding goes straight to the tokenizer's Rust backend (`tokenizers`), whose truncation keeps the model's
own special tokens (`[CLS] … [SEP]`, `<s> … </s>`) and reports what it cut off, so `truncated` is exact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from kobert_ops.batching import encoded_batch


class AutoTokenizerAdapter:
    """A fast (`tokenizer.json`-backed) Hugging Face tokenizer with `KoBERTTokenizer`'s batch interface.

    Args:
        tokenizer: a `transformers` tokenizer with a `tokenizers` backend.
        source: where it came from, for messages.
    """

    def __init__(self, tokenizer, source: str = "") -> None:
        from tokenizers import Tokenizer

        self.tokenizer = tokenizer
        self.source = source or getattr(tokenizer, "name_or_path", "")
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(f"tokenizer {self.source} ({type(tokenizer).__name__}) has no tokenizer.json backend; "
                             "save it as a fast tokenizer (AutoTokenizer.from_pretrained(...).save_pretrained(DIR))")
        if tokenizer.pad_token_id is None:
            raise ValueError(f"tokenizer {self.source} has no padding token; an encoder's tokenizer needs one")
        # Own copies: truncation is a setting of the backend object, and the wrapped tokenizer keeps its own.
        self._backend = Tokenizer.from_str(backend.to_str())
        self._backend.no_padding()
        self._backend.no_truncation()
        self._truncating: dict[int, Tokenizer] = {}
        self._special_count = tokenizer.num_special_tokens_to_add(pair=False)
        self._vocab_size = max(tokenizer.get_vocab().values()) + 1

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "AutoTokenizerAdapter":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(directory)), source=str(directory))

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the tokenizer's own files (`tokenizer.json`, `tokenizer_config.json`, ...) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))
        return directory

    # ------------------------------------------------------------------ ids
    @property
    def vocab_size(self) -> int:
        """One more than the largest id this tokenizer produces (added tokens included)."""
        return self._vocab_size

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def mask_token_id(self) -> int | None:
        return self.tokenizer.mask_token_id

    @property
    def unk_token_id(self) -> int | None:
        return self.tokenizer.unk_token_id

    @property
    def cls_token_id(self) -> int | None:
        return self.tokenizer.cls_token_id

    @property
    def sep_token_id(self) -> int | None:
        return self.tokenizer.sep_token_id

    @property
    def special_ids(self) -> list[int]:
        """Ids of every special token (never masked or drawn as random MLM pieces)."""
        return sorted(set(self.tokenizer.all_special_ids))

    # ------------------------------------------------------------------ encoding
    def tokenize(self, text: str) -> list[str]:
        return self._backend.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str) -> list[int]:
        """Ids of `text` with the model's special tokens, untruncated."""
        return self._backend.encode(text).ids

    def batch_encode(
        self,
        texts: Iterable[str],
        max_length: int = 128,
        padding: str = "longest",
        num_threads: int = -1,
    ) -> dict[str, np.ndarray]:
        """Encode many texts into padded numpy arrays, as `KoBERTTokenizer.batch_encode` does.

        `num_threads=1` encodes on this thread only (Ray workers given one CPU); otherwise the Rust backend
        spreads the batch over its thread pool (sized by `RAYON_NUM_THREADS`, off when
        `TOKENIZERS_PARALLELISM=false`).

        Returns:
            `input_ids` (int64, padded with `pad_token_id`), `attention_mask`, `token_type_ids` (all zeros),
            `valid_length` (ids before padding) and `truncated` (bool: ids were cut off).
        """
        if max_length <= self._special_count:
            raise ValueError(f"max_length must leave room for the {self._special_count} special tokens, "
                             f"got {max_length}")
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        texts = list(texts)
        backend = self._truncating_backend(max_length)
        if num_threads == 1:
            encodings = [backend.encode(text) for text in texts]
        else:
            encodings = backend.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        truncated = np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(texts))
        width = max_length if padding == "max_length" else int(lengths.max(initial=self._special_count))
        input_ids = np.full((len(texts), width), self.pad_token_id, dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, : lengths[row]] = encoding.ids
        return encoded_batch(input_ids, lengths, truncated)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def _truncating_backend(self, max_length: int):
        if max_length not in self._truncating:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(self._backend.to_str())
            backend.enable_truncation(max_length, direction=getattr(self.tokenizer, "truncation_side", "right"))
            self._truncating[max_length] = backend
        return self._truncating[max_length]
