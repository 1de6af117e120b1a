"""Models in object storage (s3://, gs://, any fsspec URI): fetched once per node into a local cache keyed by
their content, and verified.

On a cluster, nodes share nothing but object storage, so `--model s3://bucket/models/x` is how a model
reaches the actors and training workers of every node. The driver pins it before any work starts:

    pinned = pin("s3://bucket/models/x")   # 's3://bucket/models/x#sha256=<64 hex>'

and every node resolves the pinned reference to exactly those bytes: the first process on a node downloads
the files into `$KOBERT_CACHE/models/<digest>` under a file lock (concurrent actors neither race nor fetch
twice), checks the digest of what arrived, and only then renames the folder into place; the others find it
there. A model overwritten in the bucket after the driver pinned it fails the check in one line instead of
labeling with other weights than the manifest names.

Only the folder's own files that a model or tokenizer needs are fetched (`hub.MODEL_FILES`, top level):
a `kobert train --output s3://…` folder also holds `checkpoints/`, which labeling never reads.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from kobert_ops.paths import cache_dir

PIN = "#sha256="
DIGEST_FILE = ".kobert-digest"


class ModelChangedError(RuntimeError):
    """The files under a pinned URI are not the ones the run pinned."""


def is_uri(reference: str) -> bool:
    """`scheme://…` (s3, gs, gcs, abfs, hf, memory, file, …): read through fsspec."""
    return "://" in str(reference)


def split_pin(reference: str) -> tuple[str, str | None]:
    """(URI, digest) of a pinned reference; (URI, None) of a plain one."""
    uri, _, digest = str(reference).partition(PIN)
    return uri, digest or None


def cache_root() -> Path:
    """`$KOBERT_CACHE/models`, default `~/.cache/kobert/models`: node-local, shared by the node's processes."""
    return cache_dir() / "models"


def content_digest(directory: Path) -> str:
    """sha256 over each file's name and bytes, in name order (the cache's own marker file excluded)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.name != DIGEST_FILE):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def pin(uri: str, patterns: list[str]) -> str:
    """The URI with the digest of its model files: fetched (or found in the cache by the objects' listing)."""
    uri, expected = split_pin(uri)
    directory = fetch(uri, patterns, expected)
    return f"{uri}{PIN}{(directory / DIGEST_FILE).read_text().strip()}"


def fetch(reference: str, patterns: list[str], expected: str | None = None) -> Path:
    """A local folder holding the model files under `reference` (pinned or not), from the node's cache.

    Raises:
        FileNotFoundError: nothing that looks like a model or tokenizer is stored there.
        ModelChangedError: the stored files differ from the pinned digest.
    """
    from filelock import FileLock

    uri, pinned = split_pin(reference)
    expected = expected or pinned
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    if expected and (root / expected / DIGEST_FILE).exists():
        return root / expected
    fs, files = _listing(uri, patterns)
    # The listing (names, sizes, etags or generations) names the stored version cheaply; a later run over the
    # same unchanged objects finds its digest without downloading anything.
    listing_key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    known = root / f"listing-{listing_key}"
    versioned = all(entry["version"] for entry in files.values())  # without markers a listing proves nothing
    with FileLock(str(root / f"{listing_key}.lock")):
        if expected and (root / expected / DIGEST_FILE).exists():  # fetched while this process waited
            return root / expected
        if versioned and known.exists():
            digest = known.read_text().strip()
            if (root / digest / DIGEST_FILE).exists() and expected in (None, digest):
                return root / digest
        partial = root / f".partial-{uuid.uuid4().hex}"
        partial.mkdir()
        try:
            for name, entry in files.items():
                fs.get_file(entry["path"], str(partial / name))
            digest = content_digest(partial)
            if expected and digest != expected:
                raise ModelChangedError(
                    f"{uri} changed after this run pinned it (sha256 {expected[:12]}…, now {digest[:12]}…): "
                    "someone overwrote the model mid-run; run the command again to pin the new one")
            (partial / DIGEST_FILE).write_text(digest + "\n")
            target = root / digest
            try:
                os.replace(partial, target)
            except OSError:  # the same bytes arrived through another listing (another URI, a re-upload)
                if not (target / DIGEST_FILE).exists():
                    raise
            if versioned:
                known.write_text(digest + "\n")
            return target
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def _listing(uri: str, patterns: list[str]) -> tuple[object, dict[str, dict]]:
    """The filesystem and the folder's top-level files that match `patterns`, with their version markers."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    try:
        entries = fs.ls(path, detail=True, refresh=True)
    except FileNotFoundError:
        entries = []
    files = {}
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") != "file" or not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        version = next((str(entry[k]) for k in ("ETag", "etag", "generation", "md5Hash", "mtime", "LastModified", "created")
                        if entry.get(k) is not None), "")
        files[name] = {"path": entry["name"], "size": entry.get("size"), "version": version}
    if "config.json" not in files and not any(n.endswith((".model", "tokenizer.json")) for n in files):
        raise FileNotFoundError(f"no model or tokenizer at {uri} (no config.json, tokenizer.json or *.model there)")
    return fs, files
