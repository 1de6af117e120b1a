"""How often an ONNX Runtime int8 export's integer products saturate on a CPU without VNNI (AVX2 only, or AVX-512
without VNNI), counted on any CPU.

    PYTHONPATH=. .venv/bin/python bench/int8_saturation.py --export MODEL/onnx-int8 --data REVIEWS.parquet --rows 2000

ONNX Runtime's AVX2 u8×s8 kernel (MLAS `QgemmU8S8KernelAvx2`) multiplies the raw uint8 activations by the int8
weights with `vpmaddubsw`, which adds each pair of neighbouring products (along the inner dimension) into 16 bits
with saturation; VNNI and AMX add in 32 bits. ONNX Runtime has no switch that holds it to AVX2, so this counts:
every integer product's inputs are taken from the graph (its quantized activations as extra graph outputs, its
weights from the initializers), and the pairs whose sum leaves [-32768, 32767] are counted. The activations are
this CPU's: where it has VNNI they are exact, so the first product's count is exactly AVX2's and the later ones'
are of inputs that on AVX2 would already carry the earlier saturation. Only a pair with max(a) × (|w1| + |w2|)
over 32,767 can saturate, so only those are multiplied out.

An export of this project since 2026-12-07 keeps its weights within 7 bits (`kobert_ops.onnx_export.quantize_int8`):
255 × 64 × 2 = 32,640, so the count is 0 by construction; one made before (8-bit weights) is what this measures.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

LIMIT = 32_767  # int16: vpmaddubsw saturates a pair's sum to [-32768, 32767]
PRODUCTS = ("MatMulInteger", "QAttention")  # input 0: uint8 activations; input 1: int8 weights (K, N)


def integer_products(graph) -> list[tuple[str, str, np.ndarray]]:
    """(node, activations' tensor, int8 weights (K, N) as int32) of every integer product in an ONNX graph."""
    from onnx import numpy_helper

    initializers = {tensor.name: tensor for tensor in graph.initializer}
    found = []
    for node in graph.node:
        if node.op_type in PRODUCTS and node.input[1] in initializers:
            weights = numpy_helper.to_array(initializers[node.input[1]])
            if weights.dtype != np.int8:
                raise ValueError(f"{node.name}: weights are {weights.dtype}, not int8 (not a u8×s8 product)")
            found.append((node.name, node.input[0], weights.astype(np.int32)))
    return found


def saturated_pairs(activations: np.ndarray, weights: np.ndarray) -> tuple[int, np.ndarray]:
    """(pair sums beyond 16 bits, rows of `activations` with one) of uint8 `activations` (..., K) × `weights`
    (K, N), pairs along K as the AVX2 kernel forms them."""
    rows = activations.reshape(-1, activations.shape[-1]).astype(np.int32)
    if rows.shape[1] % 2:  # the kernel pads K with zeros
        rows = np.pad(rows, ((0, 0), (0, 1)))
        weights = np.pad(weights, ((0, 1), (0, 0)))
    a = rows.reshape(len(rows), -1, 2)  # (M, K/2, 2)
    w = weights.reshape(-1, 2, weights.shape[1])  # (K/2, 2, N)
    bound = np.abs(w).sum(axis=1).max(axis=1)  # (K/2,): the largest |w1| + |w2| of each pair
    m, j = np.nonzero(a.max(axis=2) * bound[None, :] > LIMIT)  # the only pairs that can saturate
    if not len(m):
        return 0, np.zeros(0, dtype=np.int64)
    sums = a[m, j, 0][:, None] * w[j, 0, :] + a[m, j, 1][:, None] * w[j, 1, :]
    beyond = (sums > LIMIT) | (sums < -LIMIT - 1)
    return int(beyond.sum()), np.unique(m[beyond.any(axis=1)])


def count(export: Path, texts: list[str], batch_size: int = 64, max_length: int = 128) -> dict:
    """Saturating pair sums of the export's integer products on `texts`, per product and in all, and how many
    texts had at least one."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from kobert_ops.onnx_predictor import OnnxPredictor
    from kobert_ops.predictor import PASS_COST_IDS, length_batches

    model = onnx.load(str(export / "model.onnx"))
    products = integer_products(model.graph)
    for _, activations, _ in products:
        model.graph.output.append(helper.make_tensor_value_info(activations, TensorProto.UINT8, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    predictor = OnnxPredictor(export, max_length=max_length)  # its tokenizer and feeds, as `kobert label` runs it
    encoded = predictor.tokenizer.batch_encode(texts, max_length=max_length, padding="longest")
    valid = np.asarray(encoded["valid_length"], dtype=np.int64)
    per_product, touched = {name: 0 for name, _, _ in products}, set()
    started = time.perf_counter()
    for rows, width in length_batches(valid, batch_size, True, PASS_COST_IDS):
        feeds = predictor.feeds(encoded["input_ids"], valid, rows, width)
        outputs = session.run([activations for _, activations, _ in products], feeds)
        for (name, _, weights), activations in zip(products, outputs):
            saturated, hit = saturated_pairs(activations, weights)
            per_product[name] += saturated
            if saturated and activations.ndim == 3 and activations.shape[:2] == (len(rows), width):
                touched.update(rows[hit // width].tolist())  # (the [CLS]-only last layer's have other shapes)
    return {"export": str(export), "texts": len(texts), "products": len(products),
            "saturated_pair_sums": sum(per_product.values()), "texts_touched": len(touched),
            "per_product": {name: n for name, n in per_product.items() if n},
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", required=True, type=Path, help="an ONNX int8 export folder (`kobert export`)")
    parser.add_argument("--data", required=True, help="Parquet file of texts")
    parser.add_argument("--column", default="text", help="the texts' column")
    parser.add_argument("--rows", type=int, default=2000, help="texts from the file's start (non-empty ones)")
    args = parser.parse_args(argv)
    import pyarrow.parquet as pq

    texts = [text for text in pq.read_table(args.data, columns=[args.column]).column(args.column).to_pylist()
             if text and text.strip()][:args.rows]
    print(json.dumps(count(args.export, texts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
