"""Pickled checkpoints load only through torch's weights-only unpickler, and are checked before anything loads.

A `pytorch_model.bin` (what `skt/kobert-base-v1` ships) is a pickle: a planted one can run any code when
unpickled. torch >= 2.6 and transformers already unpickle with `weights_only=True`, but they refuse such a
file only deep inside a model load (a traceback; on Ray Train, one per worker and retry). So every model
folder is checked once, where its reference is resolved (`hub.resolve`), on the driver, before any weights
load: the same weights-only unpickler over the files transformers would load, reading only the pickle (the
tensors stay mapped, not read). What this project writes is safetensors and needs no check.
"""

from __future__ import annotations

import fnmatch
import zipfile
from functools import lru_cache
from pathlib import Path

# the pickled weights transformers loads when a folder has no safetensors (single file, or shards)
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*.bin")


class UnsafeCheckpointError(ValueError):
    """A pickled checkpoint holds more than tensors (code that would run when unpickled): refused, unread."""


def loads_pickled_weights(allow_patterns: list[str] | None) -> bool:
    """Whether a resolve with these file patterns fetches pickled weights (None: every file)."""
    return allow_patterns is None or any(fnmatch.fnmatch("pytorch_model.bin", pattern) for pattern in allow_patterns)


def pickled_weights(directory: Path) -> list[Path]:
    """The pickled weight files transformers would load from `directory` (none when it has safetensors)."""
    if any(directory.glob("*.safetensors")):
        return []
    return sorted(path for pattern in PICKLED_WEIGHTS for path in directory.glob(pattern))


def check_pickled_weights(directory: str | Path, reference: str | None = None) -> None:
    """Refuse `directory` if one of its pickled weight files does not load with `weights_only=True`.

    Raises:
        UnsafeCheckpointError: one line naming the model (`reference`, else the folder), the file and the
            global the unpickler refused.
    """
    for path in pickled_weights(Path(directory)):
        stat = path.stat()
        problem = _weights_only_problem(str(path), stat.st_size, stat.st_mtime_ns)
        if problem:
            raise UnsafeCheckpointError(
                f"model {reference or directory} is refused: its {path.name} is a pickle that torch's weights-only "
                f"unpickler will not load ({problem}), so it was never unpickled; use a checkpoint saved as "
                "safetensors, from a source you trust")


@lru_cache(maxsize=64)
def _weights_only_problem(path: str, size: int, mtime_ns: int) -> str | None:
    """Why torch's weights-only unpickler refuses `path`, or None if it loads (cached per file version)."""
    import pickle

    import torch

    try:
        # zip-format files are mapped, not read: checking a 370 MB checkpoint costs its pickle, not its tensors
        torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return next((line.rstrip(".") for line in lines if "GLOBAL" in line or "Unsupported" in line),
                    lines[0] if lines else type(error).__name__)
    return None
