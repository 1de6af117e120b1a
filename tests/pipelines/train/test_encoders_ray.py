"""Any Korean encoder through train → evaluate → label, by hub id, offline, without this repository's
shared folder: `skt/kobert-base-v1` in the hub's own layout (its `spiece.model` tokenizer), and a RoBERTa and
an ELECTRA encoder with tokenizers of their own (tests/hub_models.py builds all three small)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from tests.hub_models import HUB_IDS
from tests.pipelines.label.helpers import assert_exactly_once

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]


@pytest.fixture
def own_ray(offline_hub):
    """A Ray started after the offline environment is set, so that its workers inherit it (a cluster's nodes
    would have their own hub cache or mirror)."""
    import ray

    ray.init(address="local", num_cpus=3, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.parametrize("encoder", ["kobert", "roberta", "electra"])
def test_a_hub_encoder_trains_evaluates_and_labels_offline(encoder, own_ray, offline_hub, nsmc_2k, tmp_path, capsys):
    from kobert_ops import paths

    assert not any(paths.shared_dir().iterdir())  # KOBERT_SHARED is an empty folder: nothing from ../shared
    model = tmp_path / "model"
    assert main(["train", "--model", HUB_IDS[encoder], "--num-workers", "2", "--epochs", "1", "--max-length", "64",
                 "--batch-size", "32", "--max-steps-per-epoch", "20", "--train", str(nsmc_2k / "train.parquet"),
                 "--eval", str(nsmc_2k / "eval.parquet"), "--output", str(model)]) == 0
    metrics = json.loads((model / "metrics.json").read_text())
    repo, commit = metrics["run"]["tokenizer"].split("@")
    assert repo == HUB_IDS[encoder]  # the hub model's own tokenizer, not shared/kobert
    assert len(commit) == 40  # pinned by the driver to the commit every worker loads
    assert metrics["run"]["learning_rate"] == 5e-4  # pretrained weights, 128 wide: the width rule
    assert len(set(metrics["best"]["fingerprints"])) == 1 and metrics["best"]["eval_n"] == 250

    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(model).model_type == {"kobert": "bert"}.get(encoder, encoder)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", str(nsmc_2k / "test.parquet"), "--max-length", "64",
                 "--precision", "fp32"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["n"] == 250 and line["labels"] == ["부정", "긍정"]

    reviews = tmp_path / "reviews.parquet"
    pq.write_table(pq.read_table(nsmc_2k / "test.parquet").select(["review_id", "text"]), reviews)
    labels = tmp_path / "labels"
    assert main(["label", "--model", str(model), "--input", str(reviews), "--output", str(labels), "--text-column",
                 "text", "--id-column", "review_id", "--engine", "local", "--threads-per-actor", "1"]) == 0
    labeled, _ = assert_exactly_once([reviews], labels)
    assert set(labeled["label_name"].to_pylist()) <= {"부정", "긍정"} and labeled.num_rows == 250
