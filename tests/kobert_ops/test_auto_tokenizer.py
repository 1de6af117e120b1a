"""`load_tokenizer` picks KoBERT's tokenizer for KoBERT's files and the encoder's own tokenizer otherwise; the
adapter's batches equal what transformers itself encodes, with exact truncation flags."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kobert_ops.auto_tokenizer import AutoTokenizerAdapter
from kobert_ops.tokenizer import KoBERTTokenizer, load_tokenizer

SKT_EXAMPLE = ("한국어 모델을 공유합니다.", [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3])


@pytest.fixture(scope="module")
def texts(real_reviews):
    return [t for t in real_reviews[:400] if t and t.strip()] + ["재밌다 " * 300, "😀🤣👍🏻 최고 🎬🍿", "café"]


def test_kobert_layouts_give_kobert_tokenizer(tokenizer_dir, tiny_model_dir, encoder_dirs):
    # shared/kobert (legacy pair), a directory this project saved, and skt/kobert-base-v1's own files
    for directory in (tokenizer_dir, tiny_model_dir, encoder_dirs["kobert"]):
        tokenizer = load_tokenizer(directory)
        assert isinstance(tokenizer, KoBERTTokenizer), directory
        assert tokenizer.encode(SKT_EXAMPLE[0]) == SKT_EXAMPLE[1]


def test_other_encoders_get_their_own_tokenizer(encoder_dirs, texts):
    from transformers import AutoTokenizer

    for name in ("roberta", "electra"):
        tokenizer = load_tokenizer(encoder_dirs[name])
        assert isinstance(tokenizer, AutoTokenizerAdapter), name
        reference = AutoTokenizer.from_pretrained(encoder_dirs[name])
        assert [tokenizer.encode(t) for t in texts] == [reference.encode(t) for t in texts]
        assert tokenizer.vocab_size == len(reference) and tokenizer.pad_token_id == reference.pad_token_id
        assert tokenizer.mask_token_id == reference.mask_token_id
        assert tokenizer.special_ids == sorted(reference.all_special_ids)


def test_lone_spiece_without_kobert_pieces_is_refused_not_misread(tmp_path, tokenizer_dir):
    shutil.copyfile(next(tokenizer_dir.glob("*.model")), tmp_path / "spiece.model")
    with pytest.raises(ValueError, match="special tokens"):
        load_tokenizer(tmp_path)


def test_directory_without_tokenizer_files_names_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*--tokenizer"):
        load_tokenizer(tmp_path)


@pytest.mark.parametrize("name", ["roberta", "electra"])
def test_batch_equals_transformers_truncated_encoding(encoder_dirs, texts, name):
    from transformers import AutoTokenizer

    tokenizer = load_tokenizer(encoder_dirs[name])
    reference = AutoTokenizer.from_pretrained(encoder_dirs[name])(texts, max_length=32, truncation=True)["input_ids"]
    batch = tokenizer.batch_encode(texts, max_length=32)
    assert batch["input_ids"].dtype == np.int64 and batch["input_ids"].shape == (len(texts), 32)
    for row, ids in enumerate(reference):
        length = batch["valid_length"][row]
        assert batch["input_ids"][row, :length].tolist() == ids
        assert (batch["input_ids"][row, length:] == tokenizer.pad_token_id).all()
        assert batch["attention_mask"][row].sum() == length
        assert batch["truncated"][row] == (len(tokenizer.encode(texts[row])) > 32)
    assert batch["truncated"].any() and not batch["truncated"].all()
    assert batch["truncated"].dtype == bool and not batch["token_type_ids"].any()


def test_truncation_keeps_the_closing_token_and_max_length_pads(encoder_dirs):
    tokenizer = load_tokenizer(encoder_dirs["roberta"])
    batch = tokenizer.batch_encode(["재밌다 " * 100, "좋아"], max_length=16, padding="max_length")
    assert batch["input_ids"].shape == (2, 16)
    assert batch["input_ids"][0, 0] == tokenizer.cls_token_id and batch["input_ids"][0, -1] == tokenizer.sep_token_id
    assert batch["truncated"].tolist() == [True, False]
    assert batch["valid_length"].tolist() == [16, len(tokenizer.encode("좋아"))]


def test_one_thread_and_many_give_the_same_ids(encoder_dirs, texts):
    tokenizer = load_tokenizer(encoder_dirs["electra"])
    one, many = tokenizer.batch_encode(texts, num_threads=1), tokenizer.batch_encode(texts, num_threads=-1)
    for key in ("input_ids", "valid_length", "truncated"):
        np.testing.assert_array_equal(one[key], many[key])


def test_bad_arguments_and_empty_batches(encoder_dirs):
    tokenizer = load_tokenizer(encoder_dirs["electra"])
    with pytest.raises(ValueError, match="special tokens"):
        tokenizer.batch_encode(["좋다"], max_length=2)
    with pytest.raises(ValueError, match="padding"):
        tokenizer.batch_encode(["좋다"], padding="right")
    assert tokenizer.batch_encode([], max_length=8)["input_ids"].shape == (0, 2)


def test_save_pretrained_round_trips_through_autotokenizer(encoder_dirs, tmp_path, texts):
    from transformers import AutoTokenizer

    tokenizer = load_tokenizer(encoder_dirs["roberta"])
    tokenizer.save_pretrained(tmp_path)
    plain, reloaded = AutoTokenizer.from_pretrained(tmp_path), load_tokenizer(tmp_path)
    expected = [tokenizer.encode(t) for t in texts]
    assert [plain.encode(t) for t in texts] == [reloaded.encode(t) for t in texts] == expected


def test_wordpiece_vocab_txt_without_tokenizer_json(tmp_path, encoder_dirs, texts):
    """Many BERT/ELECTRA hub repositories (KcELECTRA's among them) ship only vocab.txt and tokenizer_config.json."""
    vocab = json.loads((encoder_dirs["electra"] / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    (tmp_path / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": False, "strip_accents": False}))
    from_vocab, from_json = load_tokenizer(tmp_path), load_tokenizer(encoder_dirs["electra"])
    assert isinstance(from_vocab, AutoTokenizerAdapter) and from_vocab.vocab_size == 36_000
    assert [from_vocab.encode(t) for t in texts] == [from_json.encode(t) for t in texts]
