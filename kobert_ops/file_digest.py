"""Digests of large files kept between processes: computed once, then found again by the files' identity.

A scheduled `kobert label` run reads the same ~370 MB of `base` weights every hour for two digests: the model
version its rows carry (`pipelines.label.pipeline.default_version`) and the digest an int8 export is checked
against (`kobert_ops.cpu_path.weights_sha256`), ~0.4 s each on a Zen 4, before the first labeled batch.

As git's index does, a digest is kept (in `$KOBERT_CACHE/digests.json`, default `~/.cache/kobert`) under what the
file system says of each file: device, inode, size, and modification and change times in nanoseconds. Writing a
file sets its change time to the present, and no tool can set it back, so a rewritten, replaced or copied file
is not found and is hashed again. A file changed in the last `SETTLED_S` seconds is hashed but not kept (git's
"racy" files): a file system's clock ticks coarsely, and a second write inside the same tick could keep the
times the first one left.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from kobert_ops.paths import writable_cache_dir

CACHE_FILE = "digests.json"
SETTLED_S = 2.0  # a file changed more recently than this is not kept (see the module docstring)
KEEP = 256  # entries kept, the newest; a node labels with a handful of models
_kept: dict[str, str] = {}  # this process's, so that a second call reads no file at all


def cache_path() -> Path | None:
    """`$KOBERT_CACHE/digests.json`, or None where the folder cannot be written (a read-only home)."""
    folder = writable_cache_dir()
    return folder / CACHE_FILE if folder is not None else None


def identity(files: Sequence[str | os.PathLike]) -> list[list]:
    """What the file system says of each file: path, device, inode, size, mtime and ctime (ns)."""
    stats = [(str(Path(path).resolve()), os.stat(path)) for path in files]
    return [[path, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
            for path, stat in stats]


def cached(kind: str, files: Sequence[str | os.PathLike], compute: Callable[[], str]) -> str:
    """`compute()`, a digest of `files`' bytes of the sort `kind` names, or the one kept (by this process or in
    the cache file) for these files as they are now. Kept only when no file changed during `compute` or in the
    `SETTLED_S` before it."""
    before = identity(files)
    key = json.dumps([kind, before])
    if key in _kept:
        return _kept[key]
    store = cache_path()
    digest = _read(store).get(key)
    if digest is None:
        digest = compute()
        settled = time.time_ns() - int(SETTLED_S * 1e9)
        if identity(files) != before or any(entry[5] >= settled for entry in before):
            return digest
        if store is not None:
            entries = _read(store)  # another process may have added entries meanwhile
            entries[key] = digest
            _write(store, dict(list(entries.items())[-KEEP:]))
    _kept[key] = digest
    return digest


def sha256_of(files: Sequence[str | os.PathLike]) -> str:
    """sha256 over the files' bytes, one after another."""
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def _read(store: Path | None) -> dict[str, str]:
    if store is None:
        return {}
    try:
        entries = json.loads(store.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: a cache only
        return {}
    return entries if isinstance(entries, dict) else {}


def _write(store: Path, entries: dict[str, str]) -> None:
    """Write then rename: a reader sees the old file or the new one, never half of one."""
    partial = store.with_name(f".{store.name}.{uuid.uuid4().hex}")
    try:
        partial.write_text(json.dumps(entries))
        os.replace(partial, store)
    except OSError:
        partial.unlink(missing_ok=True)
