"""BERT's masked-language-model corruption: 15% of real tokens chosen; of those 80% → [MASK], 10% → a
random piece, 10% left as they are. The model must predict the original piece at every chosen position.

Special tokens and padding are never chosen (at least one eligible position is, whatever the draw), so `[CLS]`/`[SEP]` keep their meaning and padded batches
do not dilute the 15%. Random replacements are drawn from ordinary pieces only (ids after the specials).
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # positions the loss skips (torch's cross-entropy default)


def mask_tokens(
    input_ids: torch.Tensor,
    special_ids: torch.Tensor | list[int],
    mask_id: int,
    vocab_size: int,
    first_ordinary_id: int = 5,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt a (B, T) batch of ids for MLM; returns (corrupted ids, labels with -100 where not chosen)."""
    special_ids = torch.as_tensor(special_ids, device=input_ids.device)
    eligible = ~torch.isin(input_ids, special_ids)
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    chosen = eligible & (draw < probability)
    if eligible.any() and not chosen.any():  # short texts: predict at least one piece, or the batch teaches nothing
        first = eligible.flatten().nonzero()[0]
        chosen.view(-1)[first] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    # One more draw splits the chosen positions 80/10/10.
    action = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(first_ordinary_id, vocab_size, input_ids.shape, generator=generator,
                               device=input_ids.device, dtype=input_ids.dtype)
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    corrupted = torch.where(to_random, random_ids, corrupted)
    return corrupted, labels


def mask_rows_by_text(input_ids: torch.Tensor, texts: list[str], special_ids, mask_id: int, vocab_size: int,
                      first_ordinary_id: int = 5, probability: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """`mask_tokens` row by row, each row's draw seeded by its text (crc32): the same text gets the same masks
    whichever rank, batch or epoch it lands in, so an eval loss compares across epochs and world sizes."""
    import zlib

    corrupted, labels = input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)
    for row, text in enumerate(texts):
        generator = torch.Generator().manual_seed(zlib.crc32(text.encode("utf-8")))
        corrupted[row : row + 1], labels[row : row + 1] = mask_tokens(
            input_ids[row : row + 1], special_ids, mask_id, vocab_size, first_ordinary_id, probability, generator)
    return corrupted, labels
