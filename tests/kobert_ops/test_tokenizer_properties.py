"""Property tests of the KoBERT tokenizer: any Unicode string (surrogates excepted: Python's `str` from
valid UTF-8 never holds them; the labeling stage rejects such bytes first) encodes without raising, into
ids inside the vocabulary, framed by [CLS]…[SEP], within the max length. Fixed examples and no deadline keep
the run to seconds on a loaded CI machine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kobert_ops.tokenizer import load_tokenizer

TEXTS = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300)
# texts of the shapes crawls deliver, drawn besides hypothesis's own: long, special-token names, invisibles
SHAPES = ["", " ", "ㅋ" * 400, "1,000,000원", "😂🇰🇷\u200b\x00", "[SEP] [CLS] [PAD] [UNK] [MASK]"]
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return load_tokenizer(tokenizer_dir)


@SETTINGS
@given(texts=st.lists(TEXTS | st.sampled_from(SHAPES), min_size=1, max_size=8),
       max_length=st.integers(min_value=2, max_value=64))
def test_any_text_encodes_inside_the_vocabulary_framed_and_within_max_length(tokenizer, texts, max_length):
    encoded = tokenizer.batch_encode(texts, max_length=max_length)
    ids, lengths = encoded["input_ids"], encoded["valid_length"]
    assert ids.shape[0] == len(texts) and ids.shape[1] <= max_length
    assert ((ids >= 0) & (ids < tokenizer.vocab_size)).all()
    for row, length in zip(ids, lengths):
        assert 2 <= length <= max_length
        assert row[0] == tokenizer.cls_token_id and row[length - 1] == tokenizer.sep_token_id
        assert (row[length:] == tokenizer.pad_token_id).all()
        assert tokenizer.sep_token_id not in row[1 : length - 1]  # no [SEP] inside a text's ids
    assert np.array_equal(encoded["attention_mask"].sum(axis=1), lengths)


@SETTINGS
@given(text=TEXTS)
def test_single_encode_agrees_with_the_batch(tokenizer, text):
    single = tokenizer.encode(text)
    batch = tokenizer.batch_encode([text], max_length=512)
    if not batch["truncated"][0]:
        assert single == batch["input_ids"][0, : batch["valid_length"][0]].tolist()
