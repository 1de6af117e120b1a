"""AdamW with the weight-decay rule of transformers' `Trainer`, and its warmup-then-decay schedules.

Decaying a LayerNorm gain or a bias towards 0 only fights the normalisation, so those parameters get no
weight decay, as in the original BERT recipe; the rule (by layer type and by name) is `Trainer`'s own, so
any encoder family is treated as transformers treats it. The schedules are `transformers.get_scheduler`'s.
"""

from __future__ import annotations

SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def decay_parameter_names(model) -> set[str]:
    """Names `transformers.Trainer.get_decay_parameter_names` would decay (no biases, no norms)."""
    from torch import nn
    from transformers.trainer_pt_utils import get_parameter_names

    forbidden = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
    return set(get_parameter_names(model, [nn.LayerNorm], forbidden))


def parameter_groups(model, weight_decay: float) -> list[dict]:
    """Two AdamW groups: trainable parameters with `weight_decay`, and the exempt ones with 0."""
    decayed = decay_parameter_names(model)
    decay, exempt = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue  # frozen (feature extraction): never handed to the optimizer
        (decay if name in decayed else exempt).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_optimizer(model, learning_rate: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """`torch.optim.AdamW` over `parameter_groups(model, weight_decay)`."""
    import torch

    groups = parameter_groups(model, weight_decay)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps)


def build_scheduler(optimizer, total_steps: int, warmup_ratio: float = 0.0, schedule: str = "linear"):
    """Linear warmup over `warmup_ratio` of `total_steps`, then linear or cosine decay to 0 at `total_steps`
    (or constant): `transformers.get_scheduler`."""
    from transformers import get_scheduler

    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}")
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"warmup_ratio must lie in [0, 1), got {warmup_ratio}")
    total_steps = max(1, int(total_steps))
    return get_scheduler(SCHEDULES[schedule], optimizer, num_warmup_steps=int(round(warmup_ratio * total_steps)),
                         num_training_steps=total_steps)
