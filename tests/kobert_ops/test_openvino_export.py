"""OpenVINO export (`kobert export --format openvino`): the fp32 IR labels real reviews as PyTorch fp32 does, the
static int8 IR is calibrated on other reviews than its check, smaller, checked and recorded; nothing is written
when it does not agree; NNCF sends no usage report.

The models are random-weight `tiny` ones with `tests.onnx_models.decisive_classifier`'s head where labels are
compared (a fresh head gives every review the same label, so agreement would prove nothing). A random encoder's
int8 agreement is no trained model's (see tests/kobert_ops/test_onnx_export.py): the int8 export here is made
with the floor at 0 and its check's figures are what is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kobert_ops import cpu_facts, onnx_export
from kobert_ops.onnx_export import AgreementError
from kobert_ops.openvino_export import export_openvino
from kobert_ops.openvino_predictor import OpenVinoPredictor
from tests.onnx_models import assert_labels_like_pytorch_fp32


@pytest.fixture(scope="module")
def exports(tmp_path_factory, decisive_dir, texts) -> dict:
    root = tmp_path_factory.mktemp("openvino")
    return {"root": root,
            "fp32": export_openvino(decisive_dir, root / "fp32", texts=texts[300:600], quantize=None, num_threads=1,
                                    texts_source="real_reviews"),
            "int8": export_openvino(decisive_dir, root / "int8", texts=texts[300:600], calibration_texts=texts[600:800],
                                    quantize="int8", num_threads=1, min_agreement=0)}


def test_fp32_export_labels_real_reviews_like_pytorch(exports, decisive_dir, texts):
    """Checked again on other reviews than the export's check, up to 512 positions (reviews joined past it)."""
    sample = texts[800:] + [" ".join(texts[:200])]
    predictor = OpenVinoPredictor(exports["root"] / "fp32", max_length=512, batch_size=32, num_threads=1)
    assert_labels_like_pytorch_fp32(predictor, decisive_dir, sample)
    assert predictor.runs_in == "f32" and predictor.session.threads == 1  # fp32 computes in f32 on every CPU
    check = exports["fp32"]["check"]
    assert check["rows"] == 300 and check["label_agreement"] >= 0.999 and check["runs_in"] == "f32"


def test_folder_holds_the_ir_labels_tokenizer_and_record(exports, decisive_dir):
    folder = exports["root"] / "fp32"
    names = {path.name for path in folder.iterdir()}
    assert {"model.xml", "model.bin", "config.json", "export.json", "tokenizer_config.json"} <= names
    assert "model.onnx" not in names and any(name.endswith(".model") for name in names)
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == json.loads((decisive_dir / "config.json").read_text())["id2label"]
    assert config["kobert_openvino"]["sha256"] == exports["fp32"]["model_sha256"]
    record = json.loads((folder / "export.json").read_text())
    assert record["format"] == "openvino" and record["graph"] == "cls-only last layer"
    assert {"torch", "onnx", "openvino", "nncf"} <= set(record["versions"])
    assert record["quantization"] is None and record["check"]["data"] == "real_reviews"


def test_int8_export_is_static_calibrated_smaller_and_checked(exports):
    record = exports["int8"]
    quantization = record["quantization"]
    assert record["precision"] == "int8" and quantization["calibration_rows"] == 200
    assert quantization["fake_quantize_ops"] >= 2 * 6  # the tiny model's 2 layers: at least Q, K, V, out, ffn×2
    fp32_bin, int8_bin = (exports["root"] / name / "model.bin" for name in ("fp32", "int8"))
    assert int8_bin.stat().st_size < fp32_bin.stat().st_size * 0.6  # int8 weights; embeddings stay fp32
    check = record["check"]
    assert 0 < check["max_probability_difference"] < 0.5  # int8: close, not equal (a random encoder: see above)
    assert 0.8 < check["label_agreement"] <= 1 and check["runs_in"] in ("f32", "bf16")
    predictor = OpenVinoPredictor(exports["root"] / "int8", num_threads=1)
    assert predictor.precision == "int8" and predictor.labels == ["부정", "긍정"]


def test_an_int8_check_runs_again_on_avx2_kernels_where_this_cpu_has_others(exports):
    """An AVX2-only CPU's int8 products sum pairs of u8×s8 products in 16 bits, which saturate: a check on VNNI or
    AMX kernels does not hold there. So the int8 check labels its rows again with oneDNN held to AVX2 (a child
    process) and records what that kept and which kernels ran; were the switch ignored, the kernels would say
    `avx512`. On an AVX2-only CPU the check itself ran on AVX2 kernels and nothing more is recorded."""
    check = exports["int8"]["check"]
    if cpu_facts.int8_kernels() not in ("VNNI", "AMX"):
        assert "on_avx2_kernels" not in check and check["cpu"]["int8_kernels"] == cpu_facts.int8_kernels()
        return
    held = check["on_avx2_kernels"]
    assert held["rows"] == check["rows"] == 300 and held["runs_in"] == "f32"
    assert 0.8 < held["label_agreement"] <= 1
    assert held["disagreeing_rows"] == round((1 - held["label_agreement"]) * 300)
    assert 0 < held["max_probability_difference"] < 0.5
    assert held["how"] == "ONEDNN_MAX_CPU_ISA=AVX2" and held["cpu"] == cpu_facts.cpu_model()
    primitives = held["int8_primitives"]  # oneDNN's kernels of the graph's products, as the compiled model says
    assert sum(primitives.values()) >= 2 * 6
    assert not [name for name in primitives if "avx512" in name.lower() or "amx" in name.lower()], primitives
    assert exports["fp32"]["check"].get("on_avx2_kernels") is None  # fp32 has no int8 products


def test_two_threads_run_batches_on_two_streams_with_the_same_logits(exports, texts):
    """Passes of different lengths finish out of order on OpenVINO's streams; every row still gets its own
    probabilities, bit for bit those of one thread running the passes in turn."""
    folder = exports["root"] / "int8"
    sample = texts[:500]
    one = OpenVinoPredictor(folder, batch_size=16, num_threads=1)
    two = OpenVinoPredictor(folder, batch_size=16, num_threads=2)
    assert (one.session.streams, one.session.threads) == (1, 1)
    assert (two.session.streams, two.session.threads) == (2, 2)  # one thread per stream
    alone, together = one.predict(sample), two.predict(sample)
    np.testing.assert_array_equal(together.probabilities, alone.probabilities)
    assert list(together.label_name) == list(alone.label_name)


def test_an_export_below_the_agreement_floor_writes_nothing(decisive_dir, texts, tmp_path, monkeypatch):
    monkeypatch.setitem(onnx_export.MIN_AGREEMENT, "int8", 1.001)  # no export can keep more than all labels
    with pytest.raises(AgreementError, match=r"the int8 export keeps .* below the 100.10% required"):
        export_openvino(decisive_dir, tmp_path / "refused", texts=texts[300:400], calibration_texts=texts[600:700],
                        quantize="int8", num_threads=1)
    assert not (tmp_path / "refused").exists()


def test_nncf_sends_no_usage_report():
    """NNCF reports to Google Analytics unless `NNCF_CI` is set before its import (pytest's own import switches it
    off too, hence a fresh interpreter): imported as the export imports it, its telemetry is the stub; imported
    plainly, it is the real one (what the stub check would miss if it were always true)."""
    script = ("import os, sys\nos.environ.pop('NNCF_CI', None)\n"
              "{how}\nfrom nncf.telemetry import wrapper\n"
              "print(isinstance(wrapper.telemetry, wrapper.NNCFTelemetryStub))\n")
    names = {}
    for name, how in [("export", "from kobert_ops.openvino_export import import_nncf; import_nncf()"),
                      ("plain", "import nncf")]:
        done = subprocess.run([sys.executable, "-c", script.format(how=how)], capture_output=True, text=True,
                              timeout=120)
        names[name] = done.stdout.strip().splitlines()[-1]
    assert names == {"export": "True", "plain": "False"}, names  # the stub is NNCF's MagicMock


def test_a_compiled_model_comes_from_the_cache_for_its_own_graph_only(exports, texts, tmp_path, monkeypatch):
    """OpenVINO's compiled-model cache (`$KOBERT_CACHE/openvino`): a second predictor of a folder loads what the
    first compiled; an export written again at the same path (here: the int8 IR over the fp32 one) is compiled
    anew, never served the old graph's blob."""
    import shutil

    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KOBERT_OPENVINO_CACHE")  # the suite's conftest turns the cache off
    folder = tmp_path / "export"
    shutil.copytree(exports["root"] / "fp32", folder)
    first = OpenVinoPredictor(folder, num_threads=1).predict(texts[:200])
    blobs = sorted((tmp_path / "cache" / "openvino").glob("*.blob"))
    assert len(blobs) == 1
    again = OpenVinoPredictor(folder, num_threads=1).predict(texts[:200])
    assert sorted((tmp_path / "cache" / "openvino").glob("*.blob")) == blobs
    np.testing.assert_array_equal(again.probabilities, first.probabilities)
    for name in ("model.xml", "model.bin", "export.json"):
        shutil.copy(exports["root"] / "int8" / name, folder / name)
    rewritten = OpenVinoPredictor(folder, num_threads=1)
    assert rewritten.precision == "int8" and len(list((tmp_path / "cache" / "openvino").glob("*.blob"))) == 2
    monkeypatch.setenv("KOBERT_OPENVINO_CACHE", "off")
    uncached = OpenVinoPredictor(exports["root"] / "int8", num_threads=1).predict(texts[:200])
    np.testing.assert_allclose(rewritten.predict(texts[:200]).probabilities, uncached.probabilities, atol=1e-6)
    assert np.abs(uncached.probabilities - first.probabilities).max() > 1e-3  # the two graphs do differ


def test_the_compiled_model_cache_keeps_the_newest_models_only(exports, tmp_path, monkeypatch):
    """A blob is about 100 MB for the base preset, and a node that labels with a new export every week would keep
    them all: a compile that writes one deletes all but the `KEEP_COMPILED` most recently written. A model whose
    blob went is compiled again (about a second) and is then the newest."""
    import os

    from kobert_ops import openvino_predictor

    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KOBERT_OPENVINO_CACHE")  # the suite's conftest turns the cache off
    cache = tmp_path / "cache" / "openvino"
    cache.mkdir(parents=True)
    old = []
    for age in range(6):  # earlier models' blobs, the oldest last
        blob = cache / f"old{age}.blob"
        blob.write_bytes(b"x")
        os.utime(blob, (1e9 - age * 3600, 1e9 - age * 3600))
        old.append(blob)
    (cache / "notes.txt").write_text("not OpenVINO's")  # only blobs are OpenVINO's to prune
    OpenVinoPredictor(exports["root"] / "int8", num_threads=1)
    left = sorted(path.name for path in cache.glob("*.blob"))
    kept = openvino_predictor.KEEP_COMPILED
    assert len(left) == kept and {f"old{age}.blob" for age in range(kept - 1)} < set(left), left
    assert (cache / "notes.txt").exists()
    OpenVinoPredictor(exports["root"] / "int8", num_threads=1)  # served from the cache: nothing written, none pruned
    assert sorted(path.name for path in cache.glob("*.blob")) == left
