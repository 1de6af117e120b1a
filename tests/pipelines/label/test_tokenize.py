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
