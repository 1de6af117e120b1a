"""Small encoders in the Hugging Face hub's own cache layout, for tests that load hub ids offline.

No model weights can be downloaded here, so tests build what the hub would have served:

- `kobert_base_v1`: `skt/kobert-base-v1` as SKT publishes it (a `BertModel` `config.json`, `pytorch_model.bin`,
  a `spiece.model` whose piece ids are KoBERT ids, `tokenizer_config.json` naming `KoBERTTokenizer`), with
  tiny weights instead of BERT-base;
- `roberta_encoder` / `electra_encoder`: tiny RoBERTa (`RobertaForMaskedLM`) and ELECTRA (`ElectraModel`)
  encoders, each with its own tokenizer trained here on real reviews (byte-level BPE of 4,000 pieces; WordPiece
  of 36,000 pieces, more ids than int16 holds).

`publish(cache, repo_id, folder)` copies a folder into `<cache>/models--owner--name/{blobs,snapshots,refs}`
exactly as `huggingface_hub` lays out a download, so with `HF_HUB_CACHE=<cache>` and `HF_HUB_OFFLINE=1`
`snapshot_download(repo_id)` resolves without a network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

# the ids tests/conftest.py's `hub_cache` publishes the builders' folders under
HUB_IDS = {"kobert": "skt/kobert-base-v1", "roberta": "test-encoders/roberta-tiny",
           "electra": "test-encoders/electra-tiny", "roberta_classifier": "test-encoders/roberta-tiny-nsmc"}
KOBERT_SPECIALS = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")
# skt/kobert-base-v1's tokenizer_config.json (SKT's KoBERTTokenizer from the kobert_tokenizer package)
SKT_TOKENIZER_CONFIG = {
    "do_lower_case": False, "remove_space": True, "keep_accents": False,
    "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": {"content": "[MASK]", "single_word": False, "lstrip": True, "rstrip": False, "normalized": True,
                   "__type": "AddedToken"},
    "additional_special_tokens": None, "sp_model_kwargs": {}, "tokenizer_class": "KoBERTTokenizer",
}
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)


def publish(cache: Path, repo_id: str, folder: Path) -> Path:
    """Copy `folder`'s files into the hub cache as revision `main` of `repo_id`; returns the snapshot folder."""
    storage = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    commit = hashlib.sha1("".join(f"{p.relative_to(folder)}:{d}" for p, d in digests.items()).encode()).hexdigest()
    snapshot = storage / "snapshots" / commit
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    for path, digest in digests.items():
        blob = storage / "blobs" / digest
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))  # snapshots/<commit>/<file> -> ../../blobs/<sha>
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / "main").write_text(commit)
    return snapshot


def kobert_spiece(kobert_dir: Path, target: Path) -> Path:
    """SKT's `spiece.model`: the KoBERT SentencePiece model with its pieces re-ordered into KoBERT id order.

    KoBERT ids are gluonnlp vocabulary indexes of the pieces; SKT's hub model makes them the SentencePiece ids
    themselves (`[UNK]` 0, `[PAD]` 1, `[CLS]` 2, `[SEP]` 3, `[MASK]` 4, then the pieces), so no vocabulary
    file is needed beside it.
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    original = pb.ModelProto()
    original.ParseFromString(next(Path(kobert_dir).glob("*.model")).read_bytes())
    vocab_file = next(p for p in Path(kobert_dir).glob("*.json") if "idx_to_token" in p.read_text(encoding="utf-8"))
    idx_to_token = json.loads(vocab_file.read_text(encoding="utf-8"))["idx_to_token"]
    scores = {piece.piece: piece.score for piece in original.pieces}
    model = pb.ModelProto()
    model.CopyFrom(original)
    del model.pieces[:]
    kinds = pb.ModelProto.SentencePiece
    for token in idx_to_token:
        piece = model.pieces.add()
        piece.piece = token
        if token == "[UNK]":
            piece.type = kinds.UNKNOWN
        elif token in KOBERT_SPECIALS:
            piece.type = kinds.CONTROL
        else:
            piece.type, piece.score = kinds.NORMAL, scores[token]
    model.trainer_spec.unk_id, model.trainer_spec.bos_id = 0, -1
    model.trainer_spec.eos_id, model.trainer_spec.pad_id = -1, 1
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "spiece.model").write_bytes(model.SerializeToString())
    return target / "spiece.model"


def kobert_base_v1(folder: Path, kobert_dir: Path, weights: str = "bin", seed: int = 0) -> Path:
    """`skt/kobert-base-v1`'s files with a tiny `BertModel` (KoBERT's 8,002 ids, `[PAD]`=1)."""
    import torch
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=8002, pad_token_id=1, max_position_embeddings=512, type_vocab_size=2,
                        hidden_act="gelu", **TINY)
    encoder = BertModel(config)
    encoder.config.architectures = ["BertModel"]
    if weights == "bin":  # what SKT uploaded (2021): a pickled state dict
        encoder.config.save_pretrained(folder)
        torch.save(encoder.state_dict(), folder / "pytorch_model.bin")
    else:
        encoder.save_pretrained(folder)
    kobert_spiece(kobert_dir, folder)
    (folder / "tokenizer_config.json").write_text(json.dumps(SKT_TOKENIZER_CONFIG, indent=2) + "\n")
    special = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]",
               "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return folder


def roberta_tokenizer(texts: Sequence[str], vocab_size: int = 4000):
    """A byte-level BPE tokenizer as RoBERTa's: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>`=4."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(texts, trainer)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")


def wordpiece_tokenizer(texts: Sequence[str], vocab_size: int = 36_000):
    """A cased WordPiece tokenizer as ELECTRA's/BERT's: `[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                                               "[MASK]"], show_progress=False)
    backend.train_from_iterator(texts, trainer)
    backend.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def roberta_encoder(folder: Path, texts: Sequence[str], seed: int = 0) -> Path:
    """A tiny `RobertaForMaskedLM` (an encoder with an MLM head, no classifier) and its BPE tokenizer."""
    import torch
    from transformers import RobertaConfig, RobertaForMaskedLM

    tokenizer = roberta_tokenizer(texts)
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tokenizer), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                           max_position_embeddings=514, type_vocab_size=1, **TINY)
    RobertaForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def electra_encoder(folder: Path, texts: Sequence[str], seed: int = 0, vocab_size: int = 36_000) -> Path:
    """A tiny `ElectraModel` (discriminator body, no head) and its WordPiece tokenizer of `vocab_size` ids."""
    import torch
    from transformers import ElectraConfig, ElectraModel

    tokenizer = wordpiece_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    config = ElectraConfig(vocab_size=len(tokenizer), embedding_size=32, pad_token_id=0,
                           max_position_embeddings=512, **TINY)
    ElectraModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)
