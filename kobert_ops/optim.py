"""AdamW with BERT's weight-decay exclusions, and warmup-then-decay learning-rate schedules.

Decaying a LayerNorm gain or a bias towards 0 only fights the normalisation, so those parameters (every
1-D tensor, in practice) get no weight decay, as in the original BERT recipe.
"""

from __future__ import annotations

import math

SCHEDULES = ("linear", "cosine", "constant")


def no_decay(name: str, parameter) -> bool:
    """True for biases, LayerNorm weights and any other 1-D parameter."""
    lowered = name.lower()
    return parameter.ndim <= 1 or lowered.endswith(".bias") or "layernorm" in lowered or "layer_norm" in lowered


def parameter_groups(model, weight_decay: float) -> list[dict]:
    """Two AdamW groups: trainable parameters with `weight_decay`, and the exempt ones with 0."""
    decay, exempt = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue  # frozen (feature extraction): never handed to the optimizer
        (exempt if no_decay(name, parameter) else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_optimizer(model, learning_rate: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """`torch.optim.AdamW` over `parameter_groups(model, weight_decay)`."""
    import torch

    groups = parameter_groups(model, weight_decay)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps)


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str = "linear") -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based).

    Linear warmup from 0 to 1 over `warmup_steps`, then linear or cosine decay to 0 at `total_steps`
    (or a constant 1).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer, total_steps: int, warmup_ratio: float = 0.0, schedule: str = "linear"):
    """`LambdaLR` following `lr_factor`; `warmup_ratio` is the fraction of `total_steps` spent warming up."""
    import torch

    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"warmup_ratio must lie in [0, 1), got {warmup_ratio}")
    total_steps = max(1, int(total_steps))
    warmup_steps = int(round(warmup_ratio * total_steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, schedule)
    )
