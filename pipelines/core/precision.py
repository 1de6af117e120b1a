"""Which number format a training step runs in, and the loss scaling fp16 needs.

bf16 pays only where the hardware has bf16 units: on CPUs without them (AVX2) it is emulated and hundreds of
times slower than fp32, and on GPUs before compute capability 8 (T4, V100) `torch.cuda.is_bf16_supported()`
still answers True because it counts emulation. Those GPUs get fp16 autocast with a gradient scaler instead.
"""

from __future__ import annotations

from contextlib import nullcontext


def resolve_training_precision(precision: str, device_type: str) -> str:
    """`auto` → bf16 with native units, else fp16 on CUDA, else fp32; an explicit choice is kept."""
    from kobert_ops.predictor import bf16_is_fast

    if precision != "auto":
        return precision
    if bf16_is_fast(device_type):
        return "bf16"
    return "fp16" if device_type == "cuda" else "fp32"


def autocast_context(precision: str, device_type: str):
    """The context a forward pass runs in: autocast to bf16/fp16, nothing for fp32."""
    import torch

    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        return nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtypes[precision])


def grad_scaler(precision: str, device_type: str):
    """A `torch.amp.GradScaler` for fp16 (its small range underflows gradients without one), else None."""
    if precision != "fp16":
        return None
    import torch

    return torch.amp.GradScaler(device_type)
