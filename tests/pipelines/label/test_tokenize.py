"""Tokenize stage: ids equal the tokenizer's own, long texts are truncated and flagged, rejected rows skipped."""

import numpy as np
import pyarrow as pa

from kobert_ops.tokenizer import KoBERTTokenizer
from pipelines.label.tokenize import padded, tokenize
from pipelines.label.validate import mark_rejected


def test_ids_match_the_tokenizer_and_round_trip_through_padding(tokenizer_dir, real_reviews):
    texts = [t for t in real_reviews[:200] if t and t.strip()] + ["가" * 20_000]
    batch = mark_rejected(pa.table({"review_id": list(range(len(texts))), "text": texts}),
                          text_column="text", id_column="review_id")
    out = tokenize(batch, tokenizer_dir=str(tokenizer_dir), text_column="text", max_length=64)
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    for text, ids in zip(texts[:50], out["token_ids"].to_pylist()):
        full = tokenizer.encode(text)
        assert ids == (full if len(full) <= 64 else full[:63] + [tokenizer.sep_token_id])
    truncated = out["truncated"].to_pylist()
    assert truncated[-1] is True and len(out["token_ids"][len(texts) - 1].as_py()) == 64
    input_ids, lengths = padded(out["token_ids"], pad_id=tokenizer.pad_token_id)
    expected = tokenizer.batch_encode(texts, max_length=64)
    np.testing.assert_array_equal(lengths, expected["valid_length"])
    np.testing.assert_array_equal(input_ids, expected["input_ids"][:, : input_ids.shape[1]])


def test_rejected_rows_get_no_ids(tokenizer_dir):
    batch = mark_rejected(pa.table({"review_id": [1, 2, 3], "text": ["좋다", None, " "]}),
                          text_column="text", id_column="review_id")
    out = tokenize(batch, tokenizer_dir=str(tokenizer_dir), text_column="text", max_length=16)
    expected = len(KoBERTTokenizer.from_pretrained(tokenizer_dir).encode("좋다"))
    assert [len(ids) for ids in out["token_ids"].to_pylist()] == [expected, 0, 0]


def test_ids_beyond_int16_travel_intact(electra_classifier_dir, real_reviews):
    """A 36,000-id vocabulary: ids above 32,767 must reach the model as they are, not wrapped negative."""
    from kobert_ops.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(electra_classifier_dir)
    texts = [t for t in real_reviews if t and t.strip()][:500]
    batch = mark_rejected(pa.table({"review_id": list(range(len(texts))), "text": texts}),
                          text_column="text", id_column="review_id")
    out = tokenize(batch, tokenizer_dir=str(electra_classifier_dir), text_column="text", max_length=64)
    expected = tokenizer.batch_encode(texts, max_length=64)
    assert expected["input_ids"].max() > 32_767  # the case this test is about
    input_ids, lengths = padded(out["token_ids"], pad_id=tokenizer.pad_token_id)
    np.testing.assert_array_equal(lengths, expected["valid_length"])
    np.testing.assert_array_equal(input_ids, expected["input_ids"])


def test_ids_stay_int16_when_the_vocabulary_fits(tokenizer_dir, roberta_classifier_dir):
    batch = mark_rejected(pa.table({"review_id": [1], "text": ["좋다"]}), text_column="text", id_column="review_id")
    for directory in (tokenizer_dir, roberta_classifier_dir):
        out = tokenize(batch, tokenizer_dir=str(directory), text_column="text", max_length=16)
        assert out.schema.field("token_ids").type == pa.list_(pa.int16())


def test_padding_uses_the_tokenizers_own_pad_id(roberta_classifier_dir):
    from kobert_ops.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(roberta_classifier_dir)
    batch = mark_rejected(pa.table({"review_id": [1, 2], "text": ["좋다", "이 영화 정말 최고였어요 다시 보고 싶다"]}),
                          text_column="text", id_column="review_id")
    out = tokenize(batch, tokenizer_dir=str(roberta_classifier_dir), text_column="text", max_length=64)
    input_ids, lengths = padded(out["token_ids"], pad_id=tokenizer.pad_token_id)
    assert out["token_ids"][0].as_py() == tokenizer.encode("좋다")
    assert (input_ids[0, lengths[0]:] == tokenizer.pad_token_id).all() and tokenizer.pad_token_id == 1
