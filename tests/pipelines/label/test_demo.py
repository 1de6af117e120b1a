"""`kobert demo`: fine-tunes its tiny model once on reviews it does not label, labels real reviews, prints
the summary and the agreement with the reviewers' ratings."""

import pytest

from pipelines.demo import DemoConfig, demo
from tests.pipelines.label.helpers import assert_exactly_once


@pytest.mark.ray
def test_demo_fine_tunes_once_then_labels_real_reviews(tmp_path, nsmc_path, capsys):
    config = DemoConfig(rows=400, artifacts=str(tmp_path), engine="local", train_rows=1500, train_epochs=1)
    assert demo(config) == 0
    model_files = sorted(p.stat().st_mtime for p in (tmp_path / "demo" / "model").iterdir())
    assert demo(config) == 0  # second run: the same model, output replaced
    assert sorted(p.stat().st_mtime for p in (tmp_path / "demo" / "model").iterdir()) == model_files
    output = capsys.readouterr().out
    assert "fine-tuning a tiny model" in output and output.count("fine-tuning a tiny model") == 1
    assert "labeled " in output and "of 400 rows" in output and "agreement with the reviewers' star ratings" in output
    assert_exactly_once([tmp_path / "demo" / "input" / "reviews-400.parquet"], tmp_path / "demo" / "labels")
    # the labeled reviews are the file's first 400; training used only rows from its end
    import pyarrow.parquet as pq

    trained_on = set(pq.read_table(tmp_path / "demo" / "train-source.parquet")["review_id"].to_pylist())
    labeled = set(pq.read_table(tmp_path / "demo" / "input" / "reviews-400.parquet")["review_id"].to_pylist())
    assert not trained_on & labeled
