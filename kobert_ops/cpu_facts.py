"""What this machine's CPU has, read from the kernel's /proc/cpuinfo without importing torch: its model name, AMX
tiles, VNNI's int8 dot products and so which int8 kernels its runtimes use, and whether a GPU is there at all.

Why a module of its own: the labeling path's choice (`kobert_ops.cpu_path`), an export's check (which kernels its
agreement holds for) and the benchmarks all ask these questions, and none of them needs the others' code.
"""

from __future__ import annotations

from pathlib import Path

VNNI_FLAGS = {"avx512_vnni", "avx_vnni"}  # the kernel's flags for VNNI's int8 dot products (AVX-512 or AVX)


def cpu_flags() -> set[str] | None:
    """The kernel's CPU flags (Linux), or None where /proc/cpuinfo is not there."""
    flags = cpuinfo_field("flags")
    return None if flags is None else set(flags.split())


def cpuinfo_field(field: str, path: str = "/proc/cpuinfo") -> str | None:
    """The first processor's `field` (`model name`, `cpu family`, `model`, `flags`) in /proc/cpuinfo (Linux), or
    None. The name must match whole: `model` is not `model name`."""
    try:
        with open(path) as handle:
            for line in handle:
                name, colon, value = line.partition(":")
                if colon and name.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def has_amx() -> bool:
    """AMX tiles on this CPU, from the kernel's CPU flags (Linux), else from torch: importing torch costs a
    second or more of start-up that the ONNX path does not otherwise need."""
    flags = cpu_flags()
    if flags is not None:
        return "amx_tile" in flags
    import torch

    return bool(torch.cpu._is_amx_tile_supported())


def has_vnni() -> bool:
    """VNNI's int8 dot products (AVX-512 or AVX) on this CPU: where OpenVINO's static int8 export was measured
    ahead of ONNX Runtime's dynamic one (an AVX-512 VNNI EPYC). Unknown flags: False."""
    return bool((cpu_flags() or set()) & VNNI_FLAGS)


def int8_kernels(flags: set[str] | None = None) -> str:
    """Which int8 dot products this CPU's runtimes use: `AMX`, `VNNI` (one instruction per 4 products, exact
    32-bit sums), `AVX2` (no VNNI: pairs of u8×s8 products summed in 16 bits, which saturate: ONNX Runtime's
    documentation and kernels say so, hence its 7-bit `reduce_range` advice), or `unknown`. An int8 export's check
    holds for the kernels it ran on, so the check records them (`kobert_ops.onnx_export.check`)."""
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return "unknown"
    if "amx_int8" in flags:
        return "AMX"
    if flags & VNNI_FLAGS:
        return "VNNI"
    return "AVX2" if "avx2" in flags else "unknown"


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), or `unknown`."""
    return cpuinfo_field("model name") or "unknown"


def gpu_device_files() -> bool:
    """Whether this machine shows a GPU's device files (NVIDIA's, or ROCm's `/dev/kfd`). Without them torch
    sees no GPU either, so `--device auto` is the CPU, known without importing torch."""
    return any(Path(node).exists() for node in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd"))
