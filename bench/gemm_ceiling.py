"""The measured matrix-multiply ceiling of this CPU, per precision, on the runtime that labels with it.

    PYTHONPATH=. .venv/bin/python bench/gemm_ceiling.py --threads 2

A throughput is only "near the hardware limit" against a limit measured on the same machine: this times one
ONNX Runtime graph per precision, with the same intra-op threads as the labeling paths, on matrices of
KoBERT-base's own shapes (a batch of 64 reviews of ~21 ids: M = 1,344 rows; hidden 768, feed-forward 3,072)
and on a large square one, and keeps the best rate as the ceiling:

- int8: `MatMulInteger` (uint8 activations × int8 weights → int32), what ONNX Runtime's dynamic
  quantization runs for every linear layer (VNNI / AMX-int8 where the CPU has them, AVX2's u8×s8 pairs else);
- fp32: `MatMul`;
- and int8 on OpenVINO (when installed): a `MatMul` between `FakeQuantize`d activations (256 levels) and weights
  (255 levels), which OpenVINO runs as one u8×s8 `FullyConnected` on oneDNN, as in the static int8 export
  (the activations' quantization included). The int8 ceiling is the better of the two runtimes.

One multiply-add counts as 2 operations. `bench/onnx_throughput.py` divides a path's reviews/s × operations
per review (summed over the reviews' own lengths) by this ceiling. Imported by it; run alone, it prints its figures.
"""

from __future__ import annotations

import argparse
import json
import time

SHAPES = {"ffn-in (1344x768 @ 768x3072)": (1344, 768, 3072), "ffn-out (1344x3072 @ 3072x768)": (1344, 3072, 768),
          "square 2048": (2048, 2048, 2048)}


def _graph(precision: str, k: int, n: int):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if precision == "int8":
        weight = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "B")
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", a_type, ["M", k])],
                              [helper.make_tensor_value_info("Y", y_type, ["M", n])], initializer=[weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def measure(precision: str, m: int, k: int, n: int, threads: int, seconds: float = 2.0) -> float:
    """GOP/s of one M×K @ K×N product, best of repeated timed runs after a warm-up."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(_graph(precision, k, n), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    a = (rng.integers(0, 256, (m, k), dtype=np.uint8) if precision == "int8"
         else rng.standard_normal((m, k), dtype=np.float32))
    for _ in range(3):
        session.run(None, {"A": a})
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        session.run(None, {"A": a})
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n / best / 1e9


def _openvino_int8(k: int, n: int):
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    a = ops.parameter([-1, k], ov.Type.f32, name="A")
    low, high = ops.constant(np.float32(0)), ops.constant(np.float32(4))
    w_low, w_high = (ops.constant(np.full((1, n), bound, np.float32)) for bound in (-3, 3))
    weight = ops.fake_quantize(ops.constant(rng.standard_normal((k, n)).astype(np.float32)), w_low, w_high, w_low,
                               w_high, 255)
    return ov.Model([ops.matmul(ops.fake_quantize(a, low, high, low, high, 256), weight, False, False)], [a])


def measure_openvino(m: int, k: int, n: int, threads: int, seconds: float = 2.0) -> float:
    """GOP/s of one statically quantized M×K @ K×N product on OpenVINO, best of repeated runs after a warm-up."""
    import numpy as np
    import openvino as ov

    compiled = ov.Core().compile_model(_openvino_int8(k, n), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    a = np.random.default_rng(1).uniform(0, 4, (m, k)).astype(np.float32)
    for _ in range(3):
        request.infer({0: a})
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        request.infer({0: a})
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n / best / 1e9


def ceilings(threads: int) -> dict:
    """{precision: {"gops": best, "by_shape": {shape: gops}}} for int8 and fp32; int8 also "by_runtime"."""
    result = {}
    for precision in ("int8", "fp32"):
        by_shape = {name: round(measure(precision, *shape, threads=threads), 1) for name, shape in SHAPES.items()}
        result[precision] = {"gops": max(by_shape.values()), "by_shape": by_shape}
    try:
        import openvino  # noqa: F401
    except ImportError:
        return result
    openvino_int8 = {name: round(measure_openvino(*shape, threads=threads), 1) for name, shape in SHAPES.items()}
    int8 = result["int8"]
    int8["by_runtime"] = {"onnxruntime MatMulInteger": {"gops": int8["gops"], "by_shape": int8["by_shape"]},
                          "openvino FullyConnected u8xs8": {"gops": max(openvino_int8.values()),
                                                            "by_shape": openvino_int8}}
    int8["gops"] = max(int8["gops"], max(openvino_int8.values()))
    return result


def base_ops_per_review(tokens: float, hidden: int = 768, intermediate: int = 3072, layers: int = 12,
                        cls_only_last_layer: bool = True) -> float:
    """Operations (2 per multiply-add) of one BERT-base classifier forward over `tokens` ids: the linear layers
    (Q, K, V, output, two feed-forward) and attention's two products. Embeddings, softmax and norms are left out.

    `cls_only_last_layer`: the last layer as every labeling path here runs it (`kobert_ops.fused_bert`, the
    graph of `kobert_ops.onnx_trace`): keys and values for every id, the query, output projection and
    feed-forward for `[CLS]` only. These are the operations the path executes, so its fraction of the ceiling
    is not flattered by work it skips."""
    per_token_linear = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * tokens * tokens * hidden
    full_layer = tokens * per_token_linear + attention
    if not cls_only_last_layer:
        return layers * full_layer
    last = tokens * 2 * (2 * hidden * hidden) + per_token_linear - 2 * (2 * hidden * hidden) + 2 * 2 * tokens * hidden
    return (layers - 1) * full_layer + last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    print(json.dumps(ceilings(parser.parse_args().threads), indent=2))


if __name__ == "__main__":
    main()
