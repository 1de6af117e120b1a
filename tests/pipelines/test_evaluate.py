"""`kobert evaluate`: one JSON line whose numbers match the predictions, and a report with a plot."""

import json

import numpy as np
import pandas as pd
import pytest

from kobert_ops.onnx_predictor import pass_split
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


def test_cli_evaluates_a_roberta_classifier_by_hub_id_offline(offline_hub, roberta_classifier_dir, labelled, tmp_path):
    """The real console script, `--model owner/name` from the hub cache with KOBERT_SHARED empty: the RoBERTa
    classifier's own tokenizer and labels, numbers equal to its predictions."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.hub_models import HUB_IDS

    path, texts, labels = labelled
    done = subprocess.run(
        [str(Path(sys.executable).with_name("kobert")), "evaluate", "--model", HUB_IDS["roberta_classifier"],
         "--data", str(path), "--text-column", "review", "--precision", "fp32", "--max-length", "64"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **offline_hub})
    assert done.returncode == 0, done.stderr[-3000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    predicted = Predictor(str(roberta_classifier_dir), precision="fp32", max_length=64).predict(texts).label
    assert line["n"] == 300 and line["labels"] == ["부정", "긍정"]
    assert line["accuracy"] == pytest.approx(float((predicted == labels).mean()))


def test_electra_classifier_label_names_come_from_its_config(electra_classifier_dir, labelled, tmp_path, capsys):
    path, texts, labels = labelled
    names = tmp_path / "names.parquet"
    pd.DataFrame({"text": texts, "label": [["나쁨", "좋음"][i] for i in labels]}).to_parquet(names)
    assert main(["evaluate", "--model", str(electra_classifier_dir), "--data", str(names), "--precision", "fp32"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    predicted = Predictor(str(electra_classifier_dir), precision="fp32").predict(texts).label
    assert set(line["per_class"]) == {"나쁨", "좋음"} and line["n"] == 300
    assert line["accuracy"] == pytest.approx(float((predicted == labels).mean()))


def test_another_models_tokenizer_is_one_line_error(tiny_model_dir, electra_classifier_dir, labelled, capsys):
    path, _, _ = labelled
    code = main(["evaluate", "--model", str(tiny_model_dir), "--tokenizer", str(electra_classifier_dir),
                 "--data", str(path), "--text-column", "review"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert "36,000" in error and "8,002" in error and str(electra_classifier_dir) in error and "--tokenizer" in error


@pytest.mark.parametrize("missing", ["file", "folder"])
def test_missing_data_is_one_line_naming_the_option(tiny_model_dir, tmp_path, missing):
    """The real console script: a missing --data printed only the bare path (after loading the model)."""
    import subprocess

    from tests.pipelines.label.helpers import KOBERT

    data = tmp_path / ("nowhere.parquet" if missing == "file" else "no-such-folder")
    earlier = tmp_path / "test-eval"  # a good evaluation written there before
    earlier.mkdir()
    (earlier / "metrics.json").write_text('{"accuracy": 0.81}\n')
    (earlier / "report.md").write_text("# earlier report\n")
    before = {path.name: path.read_bytes() for path in earlier.iterdir()}
    done = subprocess.run([*KOBERT, "evaluate", "--model", str(tiny_model_dir), "--data", str(data), "--output",
                           str(earlier)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"kobert evaluate: error: --data {data}: no such file or folder; give a Parquet file or a folder of them"]
    assert {path.name: path.read_bytes() for path in earlier.iterdir()} == before


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model_dir, real_reviews) -> dict:
    """The tiny model with a head whose labels vary by review (tests/onnx_models.py), its fp32 ONNX export and its
    fp32 OpenVINO export."""
    from kobert_ops.openvino_export import export_openvino
    from tests.onnx_models import decisive_with_fp32_export

    root = tmp_path_factory.mktemp("evaluate-onnx")
    models = decisive_with_fp32_export(tiny_model_dir, real_reviews, root)
    texts = [text for text in real_reviews if text and text.strip()]
    export_openvino(models["torch"], root / "openvino", texts=texts[300:600], quantize=None, num_threads=1)
    return {**models, "openvino": root / "openvino"}


def test_an_onnx_export_evaluates_like_its_pytorch_model(exported, labelled, capsys):
    """`kobert evaluate --runtime onnx|openvino` (issue 14): the same confusion matrix as PyTorch fp32 on the source
    model, and the JSON line says which path ran."""
    path, _, _ = labelled
    lines = {}
    for name, extra in [("torch", ["--runtime", "torch", "--precision", "fp32"]), ("onnx", ["--runtime", "onnx"]),
                        ("auto", []), ("openvino", ["--runtime", "openvino"])]:
        model = exported[{"auto": "onnx"}.get(name, name)]
        assert main(["evaluate", "--model", str(model), "--data", str(path), "--text-column", "review", *extra]) == 0
        lines[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert lines["torch"]["path"]["runtime"] == "torch" and lines["torch"]["path"]["precision"] == "fp32"
    onnx = dict(lines["onnx"]["path"])
    assert onnx.pop("passes_at_once") == pass_split(None)[0]  # the machine's threads, one per pass up to 4
    assert onnx == {"runtime": "onnx", "device": "cpu", "precision": "fp32", "why": "--runtime onnx",
                    "forward_batch_size": 64}
    assert lines["auto"]["path"]["runtime"] == "onnx" and "ONNX export" in lines["auto"]["path"]["why"]
    openvino = dict(lines["openvino"]["path"])
    assert openvino.pop("passes_at_once") >= 1  # OpenVINO's split of the machine's threads (kobert_ops.openvino_predictor)
    assert openvino == {"runtime": "openvino", "device": "cpu", "precision": "fp32", "runs_in": "f32",
                        "why": "--runtime openvino", "forward_batch_size": 128}
    recall = [lines["torch"]["per_class"][name]["recall"] for name in ("부정", "긍정")]
    assert 0.05 < recall[0] < 0.95 and 0.05 < recall[1] < 0.95  # both labels predicted: agreement is no given
    for name in ("onnx", "auto", "openvino"):
        assert lines[name]["accuracy"] == lines["torch"]["accuracy"]
        assert lines[name]["per_class"] == lines["torch"]["per_class"]


def test_a_runtime_that_does_not_fit_the_folder_is_one_line_exit_2(exported, labelled, capsys):
    path, _, _ = labelled
    code = main(["evaluate", "--model", str(exported["onnx"]), "--data", str(path), "--text-column", "review",
                 "--runtime", "torch"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(": label it with --runtime onnx")
