"""`kobert export` as users run it: a folder that labels like the model, a report naming the check, and one
line with exit 2 for what cannot be exported (a real process for those: no traceback reaches the user)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kobert_ops import onnx_export
from kobert_ops.cpu_facts import int8_kernels
from kobert_ops.onnx_predictor import OnnxPredictor
from kobert_ops.predictor import Predictor
from pipelines.cli import main

KOBERT = str(Path(sys.executable).parent / "kobert")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model_dir) -> Path:
    output = tmp_path_factory.mktemp("export") / "tiny-onnx"
    assert main(["export", "--model", str(tiny_model_dir), "--format", "onnx", "--output", str(output),
                 "--check-rows", "200", "--threads", "1"]) == 0
    return output


def test_export_writes_a_folder_that_labels_like_the_model(exported, tiny_model_dir, nsmc_path, real_reviews):
    record = json.loads((exported / "export.json").read_text())
    assert record["check"]["rows"] == 200 and record["check"]["data"] == str(nsmc_path)
    assert record["check"]["label_agreement"] >= 0.999
    assert record["fusions"]["Attention"] == 1 and record["graph"] == "cls-only last layer"  # tiny: 2 layers
    texts = [text for text in real_reviews[:300] if text and text.strip()]
    got = OnnxPredictor(exported, num_threads=1).predict(texts)
    expected = Predictor(tiny_model_dir, device="cpu", precision="fp32", num_threads=1).predict(texts)
    assert got.label_name == expected.label_name
    assert abs(got.probabilities - expected.probabilities).max() < 1e-4


def test_an_existing_export_is_not_overwritten(exported, tiny_model_dir, capsys):
    before = (exported / "model.onnx").stat().st_mtime_ns
    assert main(["export", "--model", str(tiny_model_dir), "--output", str(exported)]) == 2
    assert "already holds an export" in capsys.readouterr().err
    assert (exported / "model.onnx").stat().st_mtime_ns == before


def test_a_refused_export_exits_1_and_writes_nothing(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(onnx_export.MIN_AGREEMENT, "fp32", 1.001)  # no export can keep more than all labels
    assert main(["export", "--model", str(tiny_model_dir), "--output", str(tmp_path / "out"), "--check-rows", "50",
                 "--threads", "1"]) == 1
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # (transformers' weight-loading bar before it)
    assert last_line.startswith("kobert export: refused: the fp32 export keeps 100.00%")
    assert not (tmp_path / "out").exists()
    # a lower floor, asked for: written, the floor recorded (`auto` still holds an int8 export to 99.5%)
    assert main(["export", "--model", str(tiny_model_dir), "--output", str(tmp_path / "out"), "--check-rows", "50",
                 "--threads", "1", "--min-agreement", "0.9"]) == 0
    assert json.loads((tmp_path / "out" / "export.json").read_text())["check"]["min_agreement"] == 0.9


def test_a_uri_output_gets_the_folder_once_complete(tiny_model_dir, tmp_path):
    assert main(["export", "--model", str(tiny_model_dir), "--output", f"file://{tmp_path}/remote",
                 "--check-rows", "50", "--quantize", "int8", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "remote" / "export.json").read_text())["precision"] == "int8"


@pytest.mark.parametrize("problem, message", [
    ("missing", "model/tokenizer path not found: .*nowhere"),
    ("format", "--format must be one of onnx, openvino, got 'tflite'"),
    ("calibration", "--calibration-rows must be at least 1, got 0"),
    ("calibration_data", "--calibration-data sets the scales of a static int8 export: it needs --format openvino "
                         "--quantize int8"),
    ("quantize", "--quantize must be int8 .*, got 'int4'"),
    ("floor", "--min-agreement must be a share from 0 to 1, got 99.5"),
    ("onnx", "is already an ONNX export; pass the PyTorch classifier folder"),
    ("no_weights", "holds no weights"),
])
def test_what_cannot_be_exported_is_one_line_exit_2(problem, message, exported, tiny_model_dir, tmp_path):
    model, extra = str(tiny_model_dir), []
    if problem == "missing":
        model = str(tmp_path / "nowhere")
    elif problem == "format":
        extra = ["--format", "tflite"]
    elif problem == "quantize":
        extra = ["--quantize", "int4"]
    elif problem == "floor":
        extra = ["--min-agreement", "99.5"]
    elif problem == "calibration":
        extra = ["--format", "openvino", "--quantize", "int8", "--calibration-rows", "0"]
    elif problem == "calibration_data":
        extra = ["--format", "onnx", "--quantize", "int8", "--calibration-data", str(tmp_path)]
    elif problem == "onnx":
        model = str(exported)
    else:
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text("{}")
        model = str(tmp_path / "empty")
    result = subprocess.run([KOBERT, "export", "--model", model, "--output", str(tmp_path / "out"), *extra],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kobert export: error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


def test_openvino_int8_export_from_the_command_line_prints_one_line(tiny_model_dir, tmp_path, nsmc_path):
    """`kobert export --format openvino --quantize int8`: NNCF's progress bars and tables stay off the console
    (stdout is the summary line; stderr holds only transformers' weight-loading bar), the calibration reviews are
    others than the check's, and `kobert label` labels with the folder."""
    output = tmp_path / "tiny-openvino-int8"
    result = subprocess.run([KOBERT, "export", "--model", str(tiny_model_dir), "--format", "openvino", "--quantize",
                             "int8", "--output", str(output), "--check-rows", "200", "--calibration-rows", "100",
                             "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    assert line.startswith(f"wrote int8 OpenVINO model (") and "NNCF static int8, scales from 100 other reviews" in line
    assert f"to {output}; check: " in line and " around the int8 products)" in line
    assert not [text for text in result.stderr.splitlines() if "Loading weights" not in text], result.stderr
    record = json.loads((output / "export.json").read_text())
    assert record["check"]["rows"] == 200 and record["quantization"]["calibration_rows"] == 100
    held = record["check"].get("on_avx2_kernels")  # made on a VNNI or AMX CPU: its rows again on AVX2 kernels
    assert (held is not None) == (int8_kernels() in ("VNNI", "AMX"))
    if held is not None:
        assert line.endswith(f"; on AVX2 int8 kernels (oneDNN held to AVX2): {held['label_agreement']:.2%}")
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(nsmc_path).slice(0, 100), tmp_path / "reviews.parquet")
    assert main(["label", "--model", str(output), "--input", str(tmp_path / "reviews.parquet"), "--output",
                 str(tmp_path / "labels"), "--engine", "local", "--threads-per-actor", "1", "--no-progress"]) == 0


def test_calibration_reviews_are_spread_and_apart_from_the_check():
    from pipelines.export import split_calibration

    texts = [f"review {i}" for i in range(1000)]
    check, calibration = split_calibration(texts, 300)
    assert len(calibration) == 300 and len(check) == 700 and not set(check) & set(calibration)
    assert calibration[0] == "review 0" and calibration[-1] in {f"review {i}" for i in range(990, 1000)}
    assert split_calibration(texts[:10], 300) == (texts[:10][1::2], texts[:10][::2])  # a small input: half each
    assert split_calibration(texts, 0) == (texts, [])
    assert split_calibration(texts[:1], 300) == (texts[:1], [])  # one text: none to spare (the export refuses)


def test_an_int8_onnx_exports_line_says_its_check_holds_on_every_int8_kernel():
    """Its weights fit 7 bits, so AVX2's 16-bit pair sums never saturate (kobert_ops.onnx_export.quantize_int8):
    a user exporting on one kind of CPU learns the check holds on the others."""
    from pipelines.export import summary_line

    report = {"format": "onnx", "precision": "int8", "model_bytes": 92_300_000, "fusions": {"Attention": 11},
              "check": {"label_agreement": 0.9955, "rows": 2000, "max_probability_difference": 0.0306},
              "quantization": {"saturation_free": True}}
    assert summary_line(report, "out").endswith(
        "check: 99.55% of PyTorch fp32's labels on 2,000 reviews, max probability difference 0.0306; the same "
        "integer products on AVX2, VNNI and AMX int8 kernels (weights within 7 bits)")
    report["quantization"] = {}  # an earlier release's: 8-bit weights
    assert summary_line(report, "out").endswith("max probability difference 0.0306")
