"""Layer norms of an exported graph as plain ONNX operators, because ONNX Runtime's own CPU kernels for them
are slow.

ONNX Runtime's BERT optimizer fuses each residual add and layer norm into one `SkipLayerNormalization`
(plain `LayerNormalization` where there is no residual). On the CPU provider (1.32) both kernels are slow,
about 0.2 G elements/s per thread: on the EPYC Zen 4 of bench/results/onnx_throughput.md one of a base layer's
norms over a batch of 64 reviews (1,088 rows × 768) took 2.1 ms on 2 threads, the same norm as `Add`,
`ReduceMean`, `Sub`, `Mul`, `Sqrt`, `Div` 0.5 ms; the 24 norms were 14.5% of the int8 graph's time, and after
this rewrite the whole int8 graph labels ~4% more reviews a second (3,000 reviews, 64 a pass).

The rewrite computes what the fused kernel does: `s = input + skip (+ bias)`, then
`(s - mean(s)) / sqrt(mean((s - mean(s))²) + epsilon) * gamma (+ beta)` over the last axis, in fp32, so the
export's check against PyTorch holds it to the same bounds. The variance is squared with `Mul`, not `Pow`:
ONNX Runtime's session optimizer fuses the `Pow` form back into `SkipLayerNormalization` (measured), bringing
the slow kernel back.
"""

from __future__ import annotations

import numpy as np

FUSED_NORMS = ("SkipLayerNormalization", "LayerNormalization")


def split_layer_norms(model) -> int:
    """Replace `model`'s (an `onnx.ModelProto`, opset ≤ 17 or later) fused layer norms over the last axis with
    plain operators, in place; returns how many were replaced. Norms over another axis, or whose mean or
    inverse-deviation outputs are read, are left as they are."""
    from onnx import helper, numpy_helper

    graph = model.graph
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    epsilons: dict[float, str] = {}
    nodes, replaced = [], 0
    for node in graph.node:
        attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
        if node.op_type not in FUSED_NORMS or not _splittable(node, attributes):
            nodes.append(node)
            continue
        replaced += 1
        epsilon = float(attributes.get("epsilon", 1e-5 if node.op_type == "LayerNormalization" else 1e-12))
        if epsilon not in epsilons:
            epsilons[epsilon] = f"kobert_layer_norm_epsilon_{len(epsilons)}"
            graph.initializer.append(numpy_helper.from_array(np.array(epsilon, np.float32), epsilons[epsilon]))
        nodes.extend(_plain_norm(node, epsilons[epsilon], opset, graph, f"{node.name or node.op_type}_{replaced}"))
    del graph.node[:]
    graph.node.extend(nodes)
    return replaced


def _splittable(node, attributes: dict) -> bool:
    if node.op_type == "LayerNormalization":
        return attributes.get("axis", -1) == -1 and not any(node.output[1:])
    return not any(node.output[1:3])  # SkipLayerNormalization: mean, inv_std_var unused; output 3 is the sum


def _plain_norm(node, epsilon: str, opset: int, graph, prefix: str) -> list:
    """The operators of one norm; `node`'s output names are kept, so its readers need no change."""
    from onnx import helper, numpy_helper

    def name(part: str) -> str:
        return f"{prefix}/{part}"

    def reduce_mean(source: str, target: str):
        if opset >= 18:  # axes became an input in opset 18
            axes = name(f"{target}_axes")
            graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), axes))
            return helper.make_node("ReduceMean", [source, axes], [name(target)])
        return helper.make_node("ReduceMean", [source], [name(target)], axes=[-1])

    inputs = list(node.input) + [""] * 5
    if node.op_type == "SkipLayerNormalization":
        source, skip, gamma, beta, bias = inputs[:5]
        out = [helper.make_node("Add", [source, skip], [name("residual")])]
        total = name("residual")
        if bias:
            out.append(helper.make_node("Add", [total, bias], [name("sum")]))
            total = name("sum")
        if len(node.output) > 3 and node.output[3]:
            out.append(helper.make_node("Identity", [total], [node.output[3]]))
    else:
        total, gamma, beta = inputs[:3]
        out = []
    out += [reduce_mean(total, "mean"),
            helper.make_node("Sub", [total, name("mean")], [name("centered")]),
            helper.make_node("Mul", [name("centered"), name("centered")], [name("squared")]),
            reduce_mean(name("squared"), "variance"),
            helper.make_node("Add", [name("variance"), epsilon], [name("variance_epsilon")]),
            helper.make_node("Sqrt", [name("variance_epsilon")], [name("deviation")]),
            helper.make_node("Div", [name("centered"), name("deviation")], [name("normalized")])]
    if beta:
        out += [helper.make_node("Mul", [name("normalized"), gamma], [name("scaled")]),
                helper.make_node("Add", [name("scaled"), beta], [node.output[0]])]
    else:
        out.append(helper.make_node("Mul", [name("normalized"), gamma], [node.output[0]]))
    return out
