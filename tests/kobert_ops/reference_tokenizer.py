"""An independent, deliberately plain implementation of SKT's KoBERT tokenizer, written from the reference
behaviour in `shared/kobert/README.md` (XLNet preprocessing + SentencePiece + gluonnlp vocabulary).

It shares no code with `kobert_ops.tokenizer`: string pieces instead of ids, a per-character combining filter
instead of a regex, one text at a time. Tests compare the two on real reviews and edge strings.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import sentencepiece as spm

UNDERLINE = "\u2581"


class ReferenceKoBERT:
    def __init__(self, directory: Path) -> None:
        model = next(p for p in directory.glob("*.model"))
        vocab = next(p for p in directory.glob("*.json") if "idx_to_token" in p.read_text(encoding="utf-8"))
        self.sp = spm.SentencePieceProcessor()
        self.sp.Load(str(model))
        self.token_to_idx = json.loads(vocab.read_text(encoding="utf-8"))["token_to_idx"]

    @staticmethod
    def preprocess(text: str) -> str:
        outputs = " ".join(text.strip().split())
        outputs = outputs.replace("``", '"').replace("''", '"')
        outputs = unicodedata.normalize("NFKD", outputs)
        return "".join(c for c in outputs if not unicodedata.combining(c))

    def pieces(self, text: str, legacy: bool = False) -> list[str]:
        if legacy:
            return self.sp.EncodeAsPieces(text)
        pieces = self.sp.EncodeAsPieces(self.preprocess(text))
        new_pieces: list[str] = []
        for piece in pieces:
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                cur = self.sp.EncodeAsPieces(piece[:-1].replace(UNDERLINE, ""))
                if piece[0] != UNDERLINE and cur[0][0] == UNDERLINE:
                    cur = cur[1:] if len(cur[0]) == 1 else [cur[0][1:], *cur[1:]]
                cur.append(",")
                new_pieces.extend(cur)
            else:
                new_pieces.append(piece)
        return new_pieces

    def encode(self, text: str, legacy: bool = False) -> list[int]:
        unk = self.token_to_idx["[UNK]"]
        ids = [self.token_to_idx.get(piece, unk) for piece in self.pieces(text, legacy)]
        return [self.token_to_idx["[CLS]"], *ids, self.token_to_idx["[SEP]"]]
