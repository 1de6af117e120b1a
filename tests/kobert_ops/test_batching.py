"""Length bucketing keeps every row exactly once, with its own label, and pads far less than input order."""

import numpy as np

from kobert_ops.batching import bucket_batches, bucketed_batches, pad_batch
from kobert_ops.tokenizer import KoBERTTokenizer


def test_every_row_in_exactly_one_batch_of_similar_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 128, size=1000)
    batches = bucket_batches(lengths, 32, np.random.default_rng(1))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    spread = max(int(lengths[b].max() - lengths[b].min()) for b in batches)
    assert spread <= 10  # 1000 rows over ~125 lengths: a batch of 32 spans a few lengths only


def test_without_rng_order_is_deterministic_and_sorted():
    lengths = [5, 3, 9, 3, 7]
    batches = bucket_batches(lengths, 2)
    assert [b.tolist() for b in batches] == [[1, 3], [0, 4], [2]]
    assert [b.tolist() for b in bucket_batches(lengths, 2)] == [b.tolist() for b in batches]


def test_pad_batch_cuts_to_the_longest_row_and_pads_with_pad_id():
    input_ids = np.array([[2, 10, 11, 3, 1, 1], [2, 12, 3, 1, 1, 1]])
    batch = pad_batch(input_ids, np.array([4, 3]))
    assert batch["input_ids"].tolist() == [[2, 10, 11, 3], [2, 12, 3, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_bucketed_batches_of_real_reviews(tokenizer_dir, real_reviews):
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    texts = [t for t in real_reviews if t and t.strip()][:2000]
    pools = [{"text": np.array(texts[i : i + 512], dtype=object), "label": np.arange(i, min(i + 512, len(texts)))}
             for i in range(0, len(texts), 512)]
    encode = lambda batch_texts: tokenizer.batch_encode(batch_texts, max_length=64)  # noqa: E731
    batches = list(bucketed_batches(pools, encode, 32, "text", "label", np.random.default_rng(0)))
    seen = np.concatenate([b["labels"] for b in batches])
    assert sorted(seen.tolist()) == list(range(len(texts)))  # no row lost or repeated
    for batch in batches[:20]:  # each row's ids are its own text's ids: labels did not get shuffled apart
        for ids, mask, row in zip(batch["input_ids"], batch["attention_mask"], batch["labels"]):
            expected = tokenizer.batch_encode([texts[row]], max_length=64)["input_ids"][0]
            assert ids[: mask.sum()].tolist() == expected.tolist()
    padded = sum(b["input_ids"].size for b in batches)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    fixed = len(texts) * 64
    assert padded < 0.6 * fixed and real / padded > 0.9  # bucketing wastes <10% of the compute on [PAD]


def test_missing_column_is_named(tokenizer_dir):
    import pytest

    with pytest.raises(KeyError, match="review"):
        list(bucketed_batches([{"text": np.array(["a"])}], lambda t: None, 4, "review", "label"))
