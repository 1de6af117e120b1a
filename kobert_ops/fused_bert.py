"""A CPU inference forward for BERT classifiers that calls oneDNN's fused matmul kernels directly.

Profiling `kobert label` on the base preset (bf16, AMX, 2 cores) showed only half the time in matmuls: the
feed-forward GELU ran as its own pass over a (rows × 3072) tensor (14%), each `nn.Linear` first copied its
bias into the output (12%), and the masked flash-attention kernel was slow for ~17-token reviews (13%).
oneDNN (`torch.ops.mkldnn._linear_pointwise`, what inductor emits on CPU) applies bias and GELU inside the
matmul; Q, K and V are one matmul of a concatenated weight; attention on short rows is two batched matmuls.
The last layer runs only `[CLS]`'s query, output projection and feed-forward: the classifier reads nothing else.

The weights are the model's own (shared, not copied, except the concatenated QKV); the results equal the
stock forward within float rounding (tests compare both in fp32 and bf16). Used by `Predictor` on CPU when
oneDNN is present; any other device or model keeps the stock forward.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def fused_kernels_available() -> bool:
    """oneDNN present in this torch build, with the fused linear op."""
    return bool(torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def supports(model) -> bool:
    """A BERT sequence classifier with the standard layer layout and exact (erf) GELU."""
    bert, config = getattr(model, "bert", None), getattr(model, "config", None)
    return (bert is not None and hasattr(model, "classifier") and getattr(bert, "pooler", None) is not None
            and getattr(config, "hidden_act", None) == "gelu" and config.model_type == "bert"
            and getattr(config, "position_embedding_type", "absolute") == "absolute")


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activation: str = "none") -> torch.Tensor:
    if activation == "gelu":  # exact GELU ("none" = no tanh approximation), fused into the matmul
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "none")
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _Layer:
    """One encoder layer's weights, arranged for the fused forward."""

    def __init__(self, layer, heads: int, eps: float) -> None:
        attention = layer.attention.self
        self.qkv_weight = torch.cat([attention.query.weight, attention.key.weight, attention.value.weight]).detach()
        self.qkv_bias = torch.cat([attention.query.bias, attention.key.bias, attention.value.bias]).detach()
        self.attention_out = layer.attention.output.dense
        self.attention_norm = layer.attention.output.LayerNorm
        self.intermediate = layer.intermediate.dense
        self.output = layer.output.dense
        self.output_norm = layer.output.LayerNorm
        self.heads, self.eps = heads, eps

    def __call__(self, hidden: torch.Tensor, mask_bias: torch.Tensor, first_token_only: bool) -> torch.Tensor:
        rows, width, size = hidden.shape
        head_size = size // self.heads
        qkv = _linear(hidden, self.qkv_weight, self.qkv_bias).view(rows, width, 3, self.heads, head_size)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (rows, heads, width, head_size)
        residual = hidden
        if first_token_only:
            query, residual = query[:, :, :1], hidden[:, :1]
        scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(head_size)) + mask_bias
        context = torch.matmul(scores.softmax(dim=-1), value)
        context = context.transpose(1, 2).reshape(rows, query.shape[2], size)
        attended = _norm(_linear(context, self.attention_out.weight, self.attention_out.bias) + residual,
                         self.attention_norm)
        inner = _linear(attended, self.intermediate.weight, self.intermediate.bias, "gelu")
        return _norm(_linear(inner, self.output.weight, self.output.bias) + attended, self.output_norm)


def _norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


class FusedBertClassifier:
    """Callable like the model for inference: `(input_ids, attention_mask) -> logits` (a tensor)."""

    def __init__(self, model) -> None:
        config = model.config
        self.model = model  # keeps the shared weights alive
        self.layers = [_Layer(layer, config.num_attention_heads, config.layer_norm_eps)
                       for layer in model.bert.encoder.layer]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        bert = self.model.bert
        hidden = bert.embeddings(input_ids=input_ids)
        # additive mask over keys, in the activations' dtype: 0 for tokens, a large negative for padding
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden, mask_bias, first_token_only=index == len(self.layers) - 1)
        pooled = torch.tanh(_linear(hidden[:, 0], bert.pooler.dense.weight, bert.pooler.dense.bias))
        classifier = self.model.classifier
        return _linear(pooled, classifier.weight, classifier.bias)
