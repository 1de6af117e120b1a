"""Where shared material lives: one setting, `KOBERT_SHARED`, defaulting to `../shared` beside the repository.

The KoBERT tokenizer files and the NSMC reviews are not part of the project; users outside this repository
point `KOBERT_SHARED` at their own copy (a folder with `kobert/` and `data/nsmc/reviews.parquet`).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NSMC_HELP = (
    "NSMC reviews are not here. Get the raw Naver movie reviews (CC0, e9t/nsmc) as Parquet with columns "
    "review_id, text, rating into $KOBERT_SHARED/data/nsmc/reviews.parquet, or set KOBERT_SHARED to a folder "
    "that has them."
)


def shared_dir() -> Path:
    """The shared folder: `$KOBERT_SHARED`, else `../shared` next to the repository root."""
    return Path(os.environ.get("KOBERT_SHARED", REPO_ROOT.parent / "shared")).expanduser()


def kobert_tokenizer_dir() -> Path:
    """SKT's KoBERT tokenizer files (SentencePiece model + gluonnlp vocabulary)."""
    return shared_dir() / "kobert"


def nsmc_reviews() -> Path:
    """652k raw Naver movie reviews with ratings."""
    return shared_dir() / "data" / "nsmc" / "reviews.parquet"


def cache_dir() -> Path:
    """The node-local cache: `$KOBERT_CACHE`, default `~/.cache/kobert` (fetched models, OpenVINO's compiled
    models, file digests), shared by the node's processes."""
    return Path(os.environ.get("KOBERT_CACHE") or Path.home() / ".cache" / "kobert").expanduser()


def writable_cache_dir(name: str = "") -> Path | None:
    """`cache_dir() / name`, created, or None where it cannot be created or written (a read-only home): for
    caches a run can do without."""
    folder = cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def require(path: Path, what: str, hint: str = "") -> Path:
    """`path` if it exists, else a FileNotFoundError that names it and says what to do."""
    if not path.exists():
        raise FileNotFoundError(f"{what} not found at {path}. {hint or 'Set KOBERT_SHARED to the shared folder.'}")
    return path
