"""`kobert evaluate`: one JSON line whose numbers match the predictions, and a report with a plot."""

import json

import numpy as np
import pandas as pd
import pytest

from kobert_ops.predictor import Predictor
from pipelines.cli import main
from pipelines.evaluate import EvaluateConfig, evaluate


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, real_reviews):
    texts = [t for t in real_reviews if t and t.strip()][:300] + ["", None]
    labels = [i % 2 for i in range(len(texts))]
    path = tmp_path_factory.mktemp("evaluate") / "reviews.parquet"
    pd.DataFrame({"review": texts, "label": labels,
                  "label_name": [["부정", "긍정"][i] for i in labels]}).to_parquet(path)
    return path, texts[:300], np.array(labels[:300])


def test_json_line_matches_the_predictor(tiny_model_dir, labelled, tmp_path, capsys):
    path, texts, labels = labelled
    code = main(["evaluate", "--model", str(tiny_model_dir), "--data", str(path), "--text-column", "review",
                 "--output", str(tmp_path / "report"), "--precision", "fp32"])
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    predicted = Predictor(str(tiny_model_dir), precision="fp32").predict(texts).label
    assert line["n"] == 300  # the empty and null texts are not scored
    assert line["accuracy"] == pytest.approx(float((predicted == labels).mean()))
    assert 0.0 <= line["macro_f1"] <= 1.0 and set(line["per_class"]) == {"부정", "긍정"}
    assert (tmp_path / "report" / "confusion_matrix.png").stat().st_size > 1000
    assert "accuracy" in (tmp_path / "report" / "report.md").read_text()


def test_label_names_map_through_the_model(tiny_model_dir, labelled):
    path, _, _ = labelled
    by_id = evaluate(EvaluateConfig(model=str(tiny_model_dir), data=str(path), text_column="review", limit=100))
    by_name = evaluate(EvaluateConfig(model=str(tiny_model_dir), data=str(path), text_column="review",
                                      label_column="label_name", limit=100))
    assert by_id["n"] == by_name["n"] == 100
    assert by_id["confusion_matrix"] == by_name["confusion_matrix"]


def test_unknown_labels_and_columns_are_errors(tiny_model_dir, tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"text": ["좋아요", "별로"], "label": ["긍정", "중립"]}).to_parquet(path)
    with pytest.raises(ValueError, match="중립"):
        evaluate(EvaluateConfig(model=str(tiny_model_dir), data=str(path)))
    with pytest.raises(ValueError, match="review"):
        evaluate(EvaluateConfig(model=str(tiny_model_dir), data=str(path), text_column="review"))
