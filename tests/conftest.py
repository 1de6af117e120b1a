"""Fixtures shared by the whole suite: the shared folder (KoBERT tokenizer, NSMC reviews) and small models.

Tests that need `../shared` fail loudly when it is missing: a silently skipped test would count as passing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kobert_ops import paths
from pipelines.core import ray_defaults

# The Rays the tests start (local ones, the 3-node loopback cluster, `ray start` heads) take the settings a
# kobert command gives its own Ray; the commands the tests run set them again (setdefault).
ray_defaults.for_own_ray()
# OpenVINO's compiled models are not cached in the home folder by the suite's many throwaway exports (and the
# commands the tests run inherit this); the cache's own test turns it on, in a temporary folder.
os.environ["KOBERT_OPENVINO_CACHE"] = "off"


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


@pytest.fixture(scope="session")
def training_texts(nsmc_path) -> list[str]:
    """60,000 real reviews from the file's start: what the test encoders' own tokenizers are trained on."""
    texts = pq.read_table(nsmc_path, columns=["text"])["text"].slice(0, 60_000).to_pylist()
    return [text for text in texts if text]


@pytest.fixture(scope="session")
def encoder_dirs(tmp_path_factory, tokenizer_dir, training_texts) -> dict[str, Path]:
    """Tiny encoders without a classification head, as local folders (see tests/hub_models.py)."""
    from tests import hub_models

    root = tmp_path_factory.mktemp("encoders")
    return {
        "kobert": hub_models.kobert_base_v1(root / "kobert-base-v1", tokenizer_dir),
        "roberta": hub_models.roberta_encoder(root / "roberta", training_texts[:20_000]),
        "electra": hub_models.electra_encoder(root / "electra", training_texts),
    }


def _classifier_dir(encoder: Path, output: Path, labels: list[str]) -> Path:
    from kobert_ops.model import load_classifier, save_classifier
    from kobert_ops.tokenizer import load_tokenizer

    save_classifier(load_classifier(encoder, labels=labels), load_tokenizer(encoder), output)
    return output


@pytest.fixture(scope="session")
def roberta_classifier_dir(tmp_path_factory, encoder_dirs) -> Path:
    """A RoBERTa classifier (fresh head on the tiny encoder) with labels 부정,긍정 and its BPE tokenizer."""
    return _classifier_dir(encoder_dirs["roberta"], tmp_path_factory.mktemp("models") / "roberta", ["부정", "긍정"])


@pytest.fixture(scope="session")
def electra_classifier_dir(tmp_path_factory, encoder_dirs) -> Path:
    """An ELECTRA classifier with labels 나쁨,좋음 and its 36,000-id WordPiece tokenizer (ids beyond int16)."""
    return _classifier_dir(encoder_dirs["electra"], tmp_path_factory.mktemp("models") / "electra", ["나쁨", "좋음"])


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory, encoder_dirs, roberta_classifier_dir) -> Path:
    """A Hugging Face hub cache holding `hub_models.HUB_IDS` in the hub's own layout."""
    from tests import hub_models

    cache = tmp_path_factory.mktemp("hf-cache") / "hub"
    for name, folder in {**encoder_dirs, "roberta_classifier": roberta_classifier_dir}.items():
        hub_models.publish(cache, hub_models.HUB_IDS[name], folder)
    return cache


@pytest.fixture
def offline_hub(monkeypatch, hub_cache, tmp_path) -> dict[str, str]:
    """This process (and child processes, through the returned environment) sees only `hub_cache`, offline,
    with `KOBERT_SHARED` an empty folder: a hub id can only load from the cache's own files."""
    from huggingface_hub import constants

    empty = tmp_path / "empty-shared"
    empty.mkdir()
    env = {"HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1", "KOBERT_SHARED": str(empty)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # huggingface_hub reads these once, at import
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return env


@pytest.fixture
def s3_env():
    """An S3 API (moto's server on 127.0.0.1) and the environment that points boto, s3fs and pyarrow at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    server.stop()
