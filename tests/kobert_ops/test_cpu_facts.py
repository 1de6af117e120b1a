"""kobert_ops.cpu_facts: what the CPU has, read from /proc/cpuinfo as torch and the runtimes read it."""

from __future__ import annotations

import pytest

from kobert_ops import cpu_facts


def test_amx_is_read_from_the_cpu_flags_as_torch_reads_it():
    """`has_amx` reads /proc/cpuinfo so that the ONNX path never imports torch; it must agree with torch."""
    import torch

    assert cpu_facts.has_amx() == bool(torch.cpu._is_amx_tile_supported())


@pytest.mark.parametrize("flags, kernels", [({"amx_tile", "amx_int8", "avx512_vnni", "avx2"}, "AMX"),
                                            ({"avx512_vnni", "avx2"}, "VNNI"), ({"avx_vnni", "avx2"}, "VNNI"),
                                            ({"avx2", "fma"}, "AVX2"), (set(), "unknown"), (None, "unknown")])
def test_int8_kernels_are_read_from_the_cpu_flags(monkeypatch, flags, kernels):
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: flags)
    assert cpu_facts.int8_kernels() == kernels


def test_a_cpuinfo_field_is_matched_whole(tmp_path):
    """`model` is the model number, not the `model name` line before it; a missing file or field gives None."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nmodel\t\t: 17\ncpu family\t: 25\n"
                       "vmx flags\t: ept\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor\t: 1\nmodel\t\t: 99\n")
    assert cpu_facts.cpuinfo_field("model", str(cpuinfo)) == "17"
    assert cpu_facts.cpuinfo_field("model name", str(cpuinfo)) == "AMD EPYC"
    assert cpu_facts.cpuinfo_field("flags", str(cpuinfo)) == "fpu avx2 avx512_vnni"
    assert cpu_facts.cpuinfo_field("stepping", str(cpuinfo)) is None
    assert cpu_facts.cpuinfo_field("model", str(tmp_path / "absent")) is None
