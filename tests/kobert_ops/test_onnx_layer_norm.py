"""Layer norms as plain operators (`kobert_ops.onnx_layer_norm`): the same outputs as ONNX Runtime's fused
kernels, every output the readers use still there, and not fused back by ONNX Runtime's own session optimizer
(which would bring the slow kernel back)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from kobert_ops.onnx_layer_norm import split_layer_norms

HIDDEN = 16


def norm_graph(opset: int) -> onnx.ModelProto:
    """x + skip + bias through a SkipLayerNormalization whose residual sum (output 3) feeds a plain
    LayerNormalization, as consecutive BERT norms would: both kinds, every optional input."""
    rng = np.random.default_rng(0)
    weights = {name: rng.standard_normal(HIDDEN).astype(np.float32) for name in ("gamma", "beta", "bias", "g2", "b2")}
    nodes = [helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"],
                              ["y", "", "", "sum"], domain="com.microsoft", epsilon=1e-12),
             helper.make_node("LayerNormalization", ["sum", "g2", "b2"], ["z"], axis=-1, epsilon=1e-5)]
    floats = ["batch", "sequence", HIDDEN]
    graph = helper.make_graph(
        nodes, "norms", [helper.make_tensor_value_info(name, TensorProto.FLOAT, floats) for name in ("x", "skip")],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, floats) for name in ("y", "z")],
        initializer=[numpy_helper.from_array(value, name) for name, value in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid("com.microsoft", 1)])


def run(model: onnx.ModelProto, feeds: dict, optimized: str | None = None) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if optimized:
        options.optimized_model_filepath = optimized
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(["y", "z"], feeds)


@pytest.mark.parametrize("opset", [17, 18])  # ReduceMean's axes: an attribute up to 17, an input from 18
def test_split_norms_compute_what_the_fused_kernels_do(opset, tmp_path):
    rng = np.random.default_rng(1)
    feeds = {name: (rng.standard_normal((3, 5, HIDDEN)) * 4 + 1).astype(np.float32) for name in ("x", "skip")}
    fused = norm_graph(opset)
    expected = run(fused, feeds)
    split = norm_graph(opset)
    assert split_layer_norms(split) == 2
    onnx.checker.check_model(split)
    optimized = tmp_path / "optimized.onnx"
    got = run(split, feeds, str(optimized))
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, atol=2e-5)
    # ONNX Runtime's session optimizer (ORT_ENABLE_ALL, as the predictor runs) does not fuse them back
    kinds = {node.op_type for node in onnx.load(str(optimized)).graph.node}
    assert not kinds & {"SkipLayerNormalization", "LayerNormalization", "SimplifiedLayerNormalization"}, kinds
    assert "ReduceMean" in kinds


def test_norms_whose_statistics_are_read_are_left_fused():
    model = norm_graph(17)
    model.graph.node[0].output[1] = "mean"  # a reader of the fused kernel's mean: the rewrite cannot give it
    assert split_layer_norms(model) == 1
    assert [node.op_type for node in model.graph.node][0] == "SkipLayerNormalization"
