"""Fixtures shared by the whole suite: the shared folder (KoBERT tokenizer, NSMC reviews) and small models.

Tests that need `../shared` fail loudly when it is missing: a silently skipped test would count as passing.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kobert_ops import paths


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    return paths.require(paths.kobert_tokenizer_dir(), "KoBERT tokenizer files (shared/kobert)")


@pytest.fixture(scope="session")
def nsmc_path() -> Path:
    return paths.require(paths.nsmc_reviews(), "NSMC reviews (shared/data/nsmc/reviews.parquet)", paths.NSMC_HELP)


@pytest.fixture(scope="session")
def real_reviews(nsmc_path) -> list[str]:
    """5,000 real review texts, spread over the whole file (every 130th row), empty ones kept."""
    table = pq.read_table(nsmc_path, columns=["text"])
    return [text for text in table["text"].take(list(range(0, 130 * 5000, 130))).to_pylist()]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """A randomly initialised tiny KoBERT classifier directory with labels 부정,긍정."""
    from pipelines.init_model import InitModelConfig, init_model

    output = tmp_path_factory.mktemp("models") / "tiny"
    init_model(InitModelConfig(output=str(output), preset="tiny", tokenizer=str(tokenizer_dir)))
    return output
