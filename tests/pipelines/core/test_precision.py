"""Which number format training picks: bf16 only on real bf16 units, fp16 with scaling on older GPUs."""

import torch

from pipelines.core import precision


def test_gpus_that_only_emulate_bf16_get_fp16(monkeypatch):
    # a T4/V100: torch.cuda.is_bf16_supported() says True (emulation), without emulation False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert precision.resolve_training_precision("auto", "cuda") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # A100, H100
    assert precision.resolve_training_precision("auto", "cuda") == "bf16"
    assert precision.resolve_training_precision("fp32", "cuda") == "fp32"


def test_cpus_use_bf16_only_with_matrix_units(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert precision.resolve_training_precision("auto", "cpu") == "fp32"  # AVX2: bf16 would be emulated
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert precision.resolve_training_precision("auto", "cpu") == "bf16"


def test_only_fp16_gets_a_scaler():
    assert precision.grad_scaler("fp16", "cpu") is not None
    assert precision.grad_scaler("bf16", "cpu") is None and precision.grad_scaler("fp32", "cuda") is None
