"""The few collectives the loop needs beyond DDP's gradient all-reduce, and the proof that ranks agree.

Each runs the same number of times on every rank (once per epoch, or once per checkpoint check), never per
step: a host sync per step starves a GPU.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _on_backend(tensor):
    import torch.distributed as dist

    return tensor.cuda() if dist.get_backend() == "nccl" else tensor


def all_reduce_sum(values: np.ndarray, world_size: int) -> np.ndarray:
    """Element-wise sum of a numpy array across ranks (float64 or int64 kept)."""
    if world_size == 1:
        return values
    import torch
    import torch.distributed as dist

    tensor = _on_backend(torch.from_numpy(np.ascontiguousarray(values)))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def any_rank(flag: bool, world_size: int) -> bool:
    """True on every rank when `flag` is True on any (a MAX all-reduce of one integer)."""
    if world_size == 1:
        return flag
    import torch
    import torch.distributed as dist

    tensor = _on_backend(torch.tensor([1 if flag else 0], dtype=torch.int64))
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def fingerprint(model) -> str:
    """sha256 of all parameter bytes in name order: equal on two ranks iff their weights are bit-identical."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def all_gather(value, world_size: int) -> list:
    """Every rank's `value` (any picklable object), in rank order."""
    if world_size == 1:
        return [value]
    import torch.distributed as dist

    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, value)
    return gathered


def gather_fingerprints(model, world_size: int) -> list[str]:
    """Every rank's fingerprint, in rank order (the all-reduce proof recorded in `metrics.json`)."""
    return all_gather(fingerprint(model), world_size)
