"""ONNX export: the exported graph labels real reviews as PyTorch fp32 does, with ONNX Runtime's BERT fusions
in it, smaller when int8, and nothing written when it does not agree.

The models are random-weight `tiny` ones (2 layers), with the head of `tests.onnx_models.decisive_classifier`
where labels are compared: a fresh head gives every review the same label, so agreement would prove nothing.
Agreement of the fp32 graph shows it computes the PyTorch model's function (masking, dynamic batch and
sequence axes, fusions), which random weights show as well as trained ones. int8 on a random encoder is
another matter: its reviews differ little in `[CLS]`, so int8 noise flips many labels (~80% kept on the
decisive tiny model), and the export refuses it, as it must; a trained model's int8 agreement is for bench/.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import pytest

from kobert_ops.onnx_export import AgreementError, export_onnx
from kobert_ops.onnx_predictor import OnnxPredictor, pass_split
from tests.onnx_models import assert_labels_like_pytorch_fp32


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_model_dir, decisive_dir, texts) -> dict:
    """fp32 of the decisive model; int8 of the plain random one (whose labels int8 cannot flip: see above)."""
    root = tmp_path_factory.mktemp("onnx")
    return {"root": root,
            "fp32": export_onnx(decisive_dir, root / "fp32", texts=texts[300:600], num_threads=1,
                                texts_source="real_reviews"),
            "int8": export_onnx(tiny_model_dir, root / "int8", texts=texts[300:600], quantize="int8", num_threads=1)}


def test_fp32_export_labels_real_reviews_like_pytorch(exports, decisive_dir, texts):
    """Checked again here on other reviews than the export's own check, through the predictor `kobert label`
    uses, and up to 512 positions (reviews joined past it): the sequence axis is dynamic."""
    folder = exports["root"] / "fp32"
    sample = texts[600:] + [" ".join(texts[:200])]
    assert_labels_like_pytorch_fp32(OnnxPredictor(folder, max_length=512, batch_size=32, num_threads=1),
                                    decisive_dir, sample)
    check = exports["fp32"]["check"]
    assert check["rows"] == 300 and check["label_agreement"] >= 0.999 and check["max_probability_difference"] < 1e-4


def test_folder_holds_graph_labels_tokenizer_and_record(exports, decisive_dir):
    folder = exports["root"] / "fp32"
    names = {path.name for path in folder.iterdir()}
    assert {"model.onnx", "config.json", "export.json", "tokenizer_config.json"} <= names
    assert any(name.endswith(".model") for name in names)  # KoBERT's SentencePiece model
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == json.loads((decisive_dir / "config.json").read_text())["id2label"]
    record = json.loads((folder / "export.json").read_text())
    assert record["opset"] == 17 and "dynamo=False" in record["exporter"] and record["quantization"] is None
    assert set(record["versions"]) == {"torch", "transformers", "onnx", "onnxruntime"}
    assert record["check"]["data"] == "real_reviews" and record["check"]["label_agreement"] >= 0.999


def test_bert_fusions_are_in_the_graph(exports):
    """ONNX Runtime fused attention, skip-layer-norm and GELU in the tiny model (2 layers); an export through
    SDPA attention would show 0 Attention here. The last layer is traced for `[CLS]` only (the classifier reads
    nothing else: kobert_ops/onnx_trace.py), so its attention stays unfused, with a query of one position."""
    graph = Counter(node.op_type for node in onnx.load(str(exports["root"] / "fp32" / "model.onnx")).graph.node)
    assert graph["Attention"] == 1 and graph["BiasGelu"] == 2
    assert exports["fp32"]["fusions"]["Attention"] == 1 and exports["fp32"]["graph"] == "cls-only last layer"
    # the 4 fused skip-layer-norms are split back into plain operators (kobert_ops/onnx_layer_norm.py)
    assert exports["fp32"]["fusions"]["SkipLayerNormalization"] == 4
    assert exports["fp32"]["layer_norms_as_plain_operators"] == 4 and graph["SkipLayerNormalization"] == 0
    # the first layer leaves 3 MatMuls (attention output, feed-forward in and out; Q, K, V, scores and context are
    # inside Attention), the last 8 (Q of [CLS], K, V, scores, context, output, feed-forward in and out)
    assert graph["MatMul"] == 3 + 8 and graph["Softmax"] == 1


def test_int8_export_is_smaller_and_keeps_the_labels(exports):
    fp32, int8 = exports["root"] / "fp32" / "model.onnx", exports["root"] / "int8" / "model.onnx"
    assert int8.stat().st_size < fp32.stat().st_size / 3
    assert exports["int8"]["precision"] == "int8" and exports["int8"]["quantization"]["int8_ops"]["QAttention"] == 1
    assert exports["int8"]["check"]["label_agreement"] >= 0.995
    assert 0 < exports["int8"]["check"]["max_probability_difference"] < 0.05  # int8: close, not equal


def test_an_int8_exports_integer_products_are_the_same_on_avx2_kernels(exports):
    """CPUs without VNNI (AVX2-only ones, AVX-512 without VNNI) add pairs of u8×s8 products in 16 bits, which
    saturate; VNNI and AMX add in 32 bits. With 8-bit weights the benchmark's base model's ONNX Runtime int8 graph
    saturated 8,051 pair sums on 500 reviews, touching nearly every review (counted on the Zen 4), so its check
    on a VNNI CPU did not hold on an AVX2 one. With every weight within 7 bits (ONNX Runtime's `reduce_range`) no
    pair of products can leave 16 bits: 255 × 64 × 2 = 32,640 ≤ 32,767. The integer products are then the same
    on every kind of int8 kernel, and so is the check."""
    from onnx import numpy_helper

    model = onnx.load(str(exports["root"] / "int8" / "model.onnx"))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    products = [node for node in model.graph.node if node.op_type in ("MatMulInteger", "QAttention")]
    # the first layer's QKV (QAttention), output, feed-forward in and out; the [CLS]-only last layer's Q, K and V
    assert len(products) == 4 + 6 + 2  # apart, and its other three; pooler and head
    for node in products:
        weights = numpy_helper.to_array(initializers[node.input[1]]).astype(np.int32)
        assert weights.dtype == np.int32 and weights.shape[0] % 2 == 0
        pairs = np.abs(weights).reshape(weights.shape[0] // 2, 2, -1).sum(axis=1)  # K runs down the rows
        assert 255 * pairs.max() <= 32_767, node.name
    assert exports["int8"]["quantization"]["saturation_free"] is True
    assert exports["int8"]["quantization"]["reduce_range"] is True


def test_session_threads_are_the_ones_asked_for(exports):
    predictor = OnnxPredictor(exports["root"] / "int8", num_threads=1)
    assert predictor.session.get_session_options().intra_op_num_threads == 1
    assert predictor.precision == "int8" and predictor.labels == ["부정", "긍정"]


@pytest.mark.parametrize("threads, split", [(1, (1, 1)), (2, (2, 1)), (4, (4, 1)), (6, (3, 2)), (32, (4, 8))])
def test_threads_are_shared_out_among_passes_running_at_once(threads, split):
    assert pass_split(threads) == split


def test_two_threads_run_two_passes_at_once_with_the_same_logits(exports, texts):
    """Passes of one thread each run side by side; every row still gets its own probabilities, bit for bit
    those of one thread running the passes in turn (int8: dynamic scales are per pass)."""
    folder = exports["root"] / "int8"
    one = OnnxPredictor(folder, batch_size=16, num_threads=1)
    two = OnnxPredictor(folder, batch_size=16, num_threads=2)
    assert two.passes == 2 and two.session.get_session_options().intra_op_num_threads == 1
    alone, together = one.predict(texts[:500]), two.predict(texts[:500])
    np.testing.assert_array_equal(together.probabilities, alone.probabilities)


def test_an_int8_export_below_the_agreement_floor_writes_nothing(decisive_dir, texts, tmp_path):
    """int8 keeps too few of the decisive random model's labels (see the module docstring): refused."""
    with pytest.raises(AgreementError, match=r"int8 export keeps \d\d\.\d\d% .* below the 99.50% required"):
        export_onnx(decisive_dir, tmp_path / "refused", texts=texts[300:600], quantize="int8", num_threads=1)
    assert not (tmp_path / "refused").exists()


def test_an_fp32_export_that_attends_to_padding_is_refused(decisive_dir, texts, tmp_path, monkeypatch):
    """Padding attended to as if it were text (the bug of a graph that drops its mask): refused by the
    probability bound (an fp32 graph matches PyTorch up to rounding), before the label count is looked at."""
    original = OnnxPredictor.predict_encoded

    def attends_to_padding(self, input_ids, valid_length):
        return original(self, input_ids, np.full_like(valid_length, input_ids.shape[1]))

    monkeypatch.setattr(OnnxPredictor, "predict_encoded", attends_to_padding)
    with pytest.raises(AgreementError, match="the graph computes something else; nothing written"):
        export_onnx(decisive_dir, tmp_path / "refused", texts=texts[300:600], num_threads=1)
    assert not (tmp_path / "refused").exists()
