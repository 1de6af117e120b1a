"""MLM corruption must follow BERT's 15% / 80-10-10 rule and never touch special tokens."""

from __future__ import annotations

import torch

from kobert_ops.masking import IGNORE_INDEX, mask_tokens

SPECIALS = [0, 1, 2, 3, 4]  # [UNK] [PAD] [CLS] [SEP] [MASK]


def batch(rows: int = 400, length: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 8002, (rows, length), generator=generator)
    ids[:, 0], ids[:, 40] = 2, 3
    ids[:, 41:] = 1  # padding after [SEP]
    return ids


def test_rates_follow_bert():
    ids = batch()
    corrupted, labels = mask_tokens(ids, SPECIALS, mask_id=4, vocab_size=8002,
                                    generator=torch.Generator().manual_seed(0))
    eligible = ~torch.isin(ids, torch.tensor(SPECIALS))
    chosen = labels != IGNORE_INDEX
    assert abs(chosen.sum().item() / eligible.sum().item() - 0.15) < 0.01
    masked = (corrupted == 4) & chosen
    unchanged = (corrupted == ids) & chosen
    replaced = chosen & ~masked & ~unchanged
    total = chosen.sum().item()
    assert abs(masked.sum().item() / total - 0.8) < 0.02
    assert abs(unchanged.sum().item() / total - 0.1) < 0.02  # (a random draw equal to the original is ~1e-4)
    assert abs(replaced.sum().item() / total - 0.1) < 0.02


def test_labels_hold_originals_and_specials_untouched():
    ids = batch()
    corrupted, labels = mask_tokens(ids, SPECIALS, mask_id=4, vocab_size=8002,
                                    generator=torch.Generator().manual_seed(0))
    chosen = labels != IGNORE_INDEX
    assert torch.equal(labels[chosen], ids[chosen])
    special = torch.isin(ids, torch.tensor(SPECIALS))
    assert torch.equal(corrupted[special], ids[special])
    assert not chosen[special].any()
    assert ((corrupted[chosen] >= 4) | (corrupted[chosen] == ids[chosen])).all()
    assert not torch.isin(corrupted[chosen & (corrupted != 4)], torch.tensor(SPECIALS)).any()


def test_a_short_batch_always_gets_a_masked_position():
    """[CLS] x [SEP] at 15%: most draws choose nothing, and a batch without targets gave a NaN loss."""
    ids = torch.tensor([[2, 100, 3]])
    for seed in range(50):
        _, labels = mask_tokens(ids, [0, 1, 2, 3, 4], 4, 8002, generator=torch.Generator().manual_seed(seed))
        assert (labels != -100).sum() >= 1 and labels[0, 0] == -100 and labels[0, 2] == -100


def test_eval_masks_depend_on_the_text_not_on_its_batch():
    from kobert_ops.masking import mask_rows_by_text

    ids = torch.arange(5, 45).reshape(2, 20)
    alone, alone_labels = mask_rows_by_text(ids[1:], ["둘째 리뷰"], [0, 1, 2, 3, 4], 4, 8002)
    together, labels = mask_rows_by_text(ids, ["첫 리뷰", "둘째 리뷰"], [0, 1, 2, 3, 4], 4, 8002)
    assert torch.equal(together[1:], alone) and torch.equal(labels[1:], alone_labels)
