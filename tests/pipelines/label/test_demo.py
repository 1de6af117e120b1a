"""`kobert demo`: builds its model once, labels real reviews, prints the summary."""

from pipelines.demo import DemoConfig, demo
from tests.pipelines.label.helpers import assert_exactly_once


def test_demo_labels_real_reviews_and_reuses_its_model(tmp_path, nsmc_path, capsys):
    config = DemoConfig(rows=300, artifacts=str(tmp_path), engine="local")
    assert demo(config) == 0
    model_files = sorted(p.stat().st_mtime for p in (tmp_path / "demo" / "model").iterdir())
    assert demo(config) == 0  # second run: same model, output replaced
    assert sorted(p.stat().st_mtime for p in (tmp_path / "demo" / "model").iterdir()) == model_files
    output = capsys.readouterr().out
    assert "labeled " in output and "of 300 rows" in output and "label 긍정" in output
    assert_exactly_once([tmp_path / "demo" / "input" / "reviews-300.parquet"], tmp_path / "demo" / "labels")
