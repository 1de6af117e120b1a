"""`kobert label --runtime onnx|openvino`: an exported folder labels a real corpus as the PyTorch model does, on
the local engine, with the same output contract (every row once, rejected rows the same).

The model is the random tiny one with `tests.onnx_models.decisive_classifier`'s head, so that labels differ
between reviews and agreeing on them means something (a fresh head labels every review alike).
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from tests.onnx_models import decisive_with_fp32_export
from tests.pipelines.label.helpers import assert_exactly_once


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_dir, real_reviews) -> dict:
    from kobert_ops.openvino_export import export_openvino

    root = tmp_path_factory.mktemp("runtime")
    models = decisive_with_fp32_export(tiny_model_dir, real_reviews, root)
    texts = [text for text in real_reviews if text and text.strip()]
    export_openvino(models["torch"], root / "openvino", texts=texts[300:600], quantize=None, num_threads=1)
    return {**models, "openvino": root / "openvino"}


def label(model, source, output, *extra) -> int:
    return main(["label", "--model", str(model), "--input", str(source), "--output", str(output), "--engine", "local",
                 "--threads-per-actor", "1", "--no-progress", "--pass-through", "movie_id,rating", *extra])


@pytest.mark.parametrize("runtime, path", [
    ("onnx", {"runtime": "onnx", "device": "cpu", "precision": "fp32",
              "why": "auto: the model folder is an ONNX export (model.onnx)", "forward_batch_size": 64,
              "passes_at_once": 1}),
    ("openvino", {"runtime": "openvino", "device": "cpu", "precision": "fp32", "runs_in": "f32", "passes_at_once": 1,
                  "why": "auto: the model folder is an OpenVINO export (model.xml)", "forward_batch_size": 128}),
])
def test_export_labels_equal_torch_labels(models, real_table, tmp_path, capsys, runtime, path):
    source = tmp_path / "reviews.parquet"
    pq.write_table(real_table, source)
    assert label(models["torch"], source, tmp_path / "torch", "--runtime", "torch", "--precision", "fp32") == 0
    assert label(models[runtime], source, tmp_path / "onnx") == 0  # auto: the folder is an export
    # the summary and the manifest say which path ran and why (issue 14)
    assert (f"  path        {runtime} fp32 on cpu ({path['why']})" in capsys.readouterr().out.splitlines())
    # each runtime's own rows per forward pass (kobert_ops.cpu_path.FORWARD_BATCH), recorded with the path
    for name, path in [("torch", {"runtime": "torch", "device": "cpu", "precision": "fp32", "why": "--precision fp32",
                                  "forward_batch_size": 128}),
                       ("onnx", path)]:
        manifest = json.loads((tmp_path / name / "_SUCCESS").read_text())
        assert [actor["path"] for actor in manifest["runs"][0]["actors"]] == [path]
    torch_rows, torch_rejected = assert_exactly_once([source], tmp_path / "torch")
    onnx_rows, onnx_rejected = assert_exactly_once([source], tmp_path / "onnx")
    by_id = {row["review_id"]: row for row in torch_rows.to_pylist()}
    onnx_list = onnx_rows.to_pylist()
    assert len(onnx_list) == len(by_id) > 1000
    same = sum(row["label_name"] == by_id[row["review_id"]]["label_name"] for row in onnx_list)
    assert same / len(onnx_list) >= 0.995
    assert 0.2 < sum(row["label"] for row in onnx_list) / len(onnx_list) < 0.8  # both labels common
    assert max(abs(row["score"] - by_id[row["review_id"]]["score"]) for row in onnx_list) < 1e-3
    assert (onnx_rejected is None) == (torch_rejected is None)
    if onnx_rejected is not None:
        assert sorted(onnx_rejected["review_id"].to_pylist()) == sorted(torch_rejected["review_id"].to_pylist())


@pytest.mark.parametrize("model, extra, message", [
    ("onnx", ["--runtime", "torch"], "is an ONNX export .*: label it with --runtime onnx"),
    ("torch", ["--runtime", "onnx"], "holds no model.onnx: --runtime onnx needs a folder written by"),
    ("onnx", ["--precision", "int8"], "is a fp32 ONNX export: --precision int8 does not apply"),
    ("openvino", ["--runtime", "onnx"], "is an OpenVINO export .*: label it with --runtime openvino"),
    ("torch", ["--runtime", "openvino"], "holds no model.xml: --runtime openvino needs a folder written by "
                                         "`kobert export --format openvino"),
    ("openvino", ["--device", "cuda"], "--runtime openvino runs on CPU .OpenVINO's CPU runtime., not --device cuda"),
])
def test_a_runtime_that_does_not_fit_the_folder_is_one_line_exit_2(models, real_table, tmp_path, capsys, model,
                                                                   extra, message):
    import re

    source = tmp_path / "reviews.parquet"
    pq.write_table(real_table.slice(0, 20), source)
    assert label(models[model], source, tmp_path / "out", *extra) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(message, last_line), last_line
    assert not (tmp_path / "out" / "_SUCCESS").exists()
