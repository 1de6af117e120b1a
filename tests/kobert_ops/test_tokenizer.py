"""KoBERTTokenizer must give SKT's ids: checked against SKT's published example and an independent reference
implementation on thousands of real reviews and hostile edge strings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kobert_ops.hub import ModelNotAvailableError
from kobert_ops.tokenizer import KoBERTTokenizer
from tests import hub_models
from tests.kobert_ops.reference_tokenizer import ReferenceKoBERT

EDGE_STRINGS = [
    "",
    " ",
    "\t\n  \u3000 ",
    "  앞뒤   공백   여러    개  ",
    "1,000,",
    "가격은 1,000,000원, 2,500, 그리고 3,",
    "12,345,678 명이 봤다 9,",
    "café naïve résumé Ångström",
    "ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ　１２３！",
    "😀🤣👍🏻 최고 🎬🍿",
    "제어\x00문자\x07가\x1b들어\u200b있음\u200d",
    "``인용'' \"따옴표\" 'single'",
    "ㅋㅋㅋㅋㅋㅋㅋㅋ ㅠㅠ ㅎㅎ",
    "[CLS] [SEP] [MASK] [UNK] [PAD]",
    "한자 漢字 日本語 カタカナ",
    "Ǆ ǅ ﬁ ﬀ ㈜ ㎏ ⅷ ①②",
    "a\u0301e\u0300 조합형 ᄒᆞᆫ글",
    "명불허전! 강추!!!",
    "가" * 10_000,
    ("재밌다 " * 2000).strip(),
    "x" * 10_000,
]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir) -> KoBERTTokenizer:
    return KoBERTTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="module")
def reference(tokenizer_dir) -> ReferenceKoBERT:
    return ReferenceKoBERT(tokenizer_dir)


def test_skt_published_example(tokenizer):
    assert tokenizer.encode("한국어 모델을 공유합니다.") == [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]


def test_special_token_ids_match_kobert(tokenizer):
    ids = (tokenizer.unk_token_id, tokenizer.pad_token_id, tokenizer.cls_token_id,
           tokenizer.sep_token_id, tokenizer.mask_token_id)
    assert ids == (0, 1, 2, 3, 4)
    assert tokenizer.vocab_size == 8002


@pytest.mark.parametrize("legacy", [False, True])
def test_real_reviews_match_reference(tokenizer, reference, real_reviews, legacy):
    texts = [t for t in real_reviews if t is not None]
    assert len(texts) >= 4000
    mismatches = [t for t in texts if tokenizer.encode(t, legacy=legacy) != reference.encode(t, legacy=legacy)]
    assert mismatches == []


@pytest.mark.parametrize("text", EDGE_STRINGS, ids=range(len(EDGE_STRINGS)))
@pytest.mark.parametrize("legacy", [False, True])
def test_edge_strings_match_reference(tokenizer, reference, text, legacy):
    assert tokenizer.encode(text, legacy=legacy) == reference.encode(text, legacy=legacy)


def test_digit_comma_rule_never_fires_on_kobert_vocab(tokenizer):
    # XLNet's re-split of pieces like '▁3,' is implemented (and compared with the reference on the edge
    # strings above), but KoBERT's SentencePiece model has no piece ending in digit+comma: '1,000,' stays
    # '▁' '1,000' ','. If a future vocabulary had such pieces, the re-split path would start to matter.
    assert not tokenizer._digit_comma_ids
    assert tokenizer.tokenize("1,000,") == ["▁", "1,000", ","]


def test_preprocessing_differs_from_legacy_where_documented(tokenizer):
    # Accents are dropped and whitespace collapsed only in the default (SKT Hugging Face) mode.
    assert tokenizer.encode("café") != tokenizer.encode("café", legacy=True)


def test_batch_encode_equals_encode_and_pads(tokenizer, real_reviews):
    texts = [t for t in real_reviews[:300] if t] + EDGE_STRINGS
    batch = tokenizer.batch_encode(texts, max_length=64)
    for row, text in enumerate(texts):
        ids = tokenizer.encode(text)
        expected = ids if len(ids) <= 64 else ids[:63] + [tokenizer.sep_token_id]
        length = batch["valid_length"][row]
        assert batch["input_ids"][row, :length].tolist() == expected
        assert (batch["input_ids"][row, length:] == tokenizer.pad_token_id).all()
        assert batch["attention_mask"][row].sum() == length
        assert batch["truncated"][row] == (len(ids) > 64)
    assert batch["input_ids"].shape[1] == batch["valid_length"].max() <= 64
    assert not batch["token_type_ids"].any()


def test_truncation_keeps_sep_and_max_length_padding(tokenizer):
    batch = tokenizer.batch_encode(["재밌다 " * 100, "좋아"], max_length=16, padding="max_length")
    assert batch["input_ids"].shape == (2, 16)
    assert batch["input_ids"][0, -1] == tokenizer.sep_token_id
    assert batch["truncated"].tolist() == [True, False]
    assert batch["valid_length"].tolist() == [16, len(tokenizer.encode("좋아"))]


def test_batch_encode_empty_batch(tokenizer):
    batch = tokenizer.batch_encode([], max_length=8)
    assert batch["input_ids"].shape == (0, 2)


def test_save_pretrained_round_trip(tokenizer, tmp_path, real_reviews):
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["vocab"].endswith(".json")
    reloaded = KoBERTTokenizer.from_pretrained(tmp_path)
    texts = [t for t in real_reviews[:500] if t]
    assert [reloaded.encode(t) for t in texts] == [tokenizer.encode(t) for t in texts]


def test_hub_layout_gives_the_same_ids(tmp_path, tokenizer_dir, tokenizer, real_reviews):
    hub_models.kobert_spiece(tokenizer_dir, tmp_path / "kobert-base-v1")
    hub_tokenizer = KoBERTTokenizer.from_pretrained(tmp_path / "kobert-base-v1")
    assert hub_tokenizer.vocab_path is None  # ids straight from spiece.model
    texts = [t for t in real_reviews[:2000] if t] + EDGE_STRINGS
    assert [hub_tokenizer.encode(t) for t in texts] == [tokenizer.encode(t) for t in texts]


def test_spiece_without_kobert_specials_is_refused(tmp_path, tokenizer):
    import shutil

    shutil.copyfile(tokenizer.sentencepiece_model, tmp_path / "spiece.model")
    with pytest.raises(ValueError, match="special tokens"):
        KoBERTTokenizer.from_pretrained(tmp_path)


def test_missing_directory_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        KoBERTTokenizer.from_pretrained(tmp_path / "nowhere")


def test_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="hf download skt/kobert-base-v1"):
        KoBERTTokenizer.from_pretrained("skt/kobert-base-v1")


def test_batch_encode_is_deterministic_across_threads(tokenizer, real_reviews):
    texts = [t for t in real_reviews[:1000] if t]
    one = tokenizer.batch_encode(texts, num_threads=1)["input_ids"]
    many = tokenizer.batch_encode(texts, num_threads=2)["input_ids"]
    assert np.array_equal(one, many)
