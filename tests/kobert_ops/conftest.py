"""Fixtures of the export tests (ONNX and OpenVINO): real review texts and the decisive random model."""

from __future__ import annotations

import pytest

from tests.onnx_models import decisive_classifier


@pytest.fixture(scope="module")
def texts(real_reviews) -> list[str]:
    """1,200 non-empty real reviews: [:300] fit the decisive head, the rest check, calibrate and sample."""
    return [text for text in real_reviews if text and text.strip()][:1200]


@pytest.fixture(scope="module")
def decisive_dir(tmp_path_factory, tiny_model_dir, texts):
    """The tiny random model with `tests.onnx_models.decisive_classifier`'s head (labels vary by review)."""
    return decisive_classifier(tiny_model_dir, texts[:300], tmp_path_factory.mktemp("models") / "decisive")
