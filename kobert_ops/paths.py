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


def require(path: Path, what: str, hint: str = "") -> Path:
    """`path` if it exists, else a FileNotFoundError that names it and says what to do."""
    if not path.exists():
        raise FileNotFoundError(f"{what} not found at {path}. {hint or 'Set KOBERT_SHARED to the shared folder.'}")
    return path
