"""The graph `kobert export` traces: `(input_ids, attention_mask) -> logits`, with the last encoder layer cut
down to what the classifier reads.

A BERT classifier reads only `[CLS]`'s last hidden state (through the pooler). In the last layer every other
position's query, attention output projection and feed-forward is computed and thrown away: 10 of that layer's
12 hidden²-sized products, about 7% of a BERT-base forward (what `kobert_ops.fused_bert` already skips on the
PyTorch path). So for a standard BERT classifier (`fused_bert.supports`) the traced module runs the model's own
embeddings and first `L-1` layers (the subgraph ONNX Runtime's BERT optimizer fuses), then the last layer for
`[CLS]` only: its query from `[CLS]`, keys and values from every position, the same modules' weights. Its
logits equal the stock forward's within float rounding (the export's check compares them on real reviews).
Any other encoder (RoBERTa, ELECTRA, ...) is traced whole.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import torch

OPSET = 17


class Logits(torch.nn.Module):
    """The stock classifier's logits: the graph's one output, not transformers' output object."""

    def __init__(self, classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids, attention_mask):
        return self.classifier(input_ids=input_ids, attention_mask=attention_mask).logits


class ClsOnlyLastLayer(torch.nn.Module):
    """A BERT classifier's logits with the last layer computed for `[CLS]` only (see the module docstring)."""

    def __init__(self, classifier) -> None:
        super().__init__()
        bert = classifier.bert
        self.trunk = _without_last_layer(bert)
        self.last = bert.encoder.layer[-1]
        self.pooler, self.head = bert.pooler, classifier.classifier
        self.heads = classifier.config.num_attention_heads

    def forward(self, input_ids, attention_mask):
        hidden = self.trunk(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        attention = self.last.attention.self
        rows, width, size = hidden.shape
        head_size = size // self.heads

        def heads(x):  # (B, T', H) -> (B, nh, T', hs)
            return x.view(rows, -1, self.heads, head_size).transpose(1, 2)

        cls = hidden[:, :1]  # (B, 1, H)
        query, key, value = heads(attention.query(cls)), heads(attention.key(hidden)), heads(attention.value(hidden))
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(head_size)) + mask_bias  # (B, nh, 1, T)
        context = torch.matmul(scores.softmax(dim=-1), value).transpose(1, 2).reshape(rows, 1, size)
        attended = self.last.attention.output(context, cls)  # dense, LayerNorm(x + [CLS])
        output = self.last.output(self.last.intermediate(attended), attended)  # (B, 1, H)
        return self.head(self.pooler(output))  # the pooler reads position 0


def _without_last_layer(bert):
    """A shallow copy of `bert` (shared weights) whose encoder stops before the last layer, without pooler."""
    trunk = copy.copy(bert)
    trunk._modules = dict(bert._modules)
    encoder = copy.copy(bert.encoder)
    encoder._modules = dict(bert.encoder._modules)
    encoder.layer = torch.nn.ModuleList(list(bert.encoder.layer)[:-1])
    trunk.encoder, trunk.pooler = encoder, None
    return trunk


def graph_module(model) -> tuple[torch.nn.Module, str]:
    """The module to trace for `model`, and what it computes (recorded in `export.json`)."""
    from kobert_ops.fused_bert import supports

    if supports(model) and model.config.num_hidden_layers > 1:
        return ClsOnlyLastLayer(model).eval(), "cls-only last layer"
    return Logits(model).eval(), "full"


def trace(model, path: Path) -> str:
    """Trace `model` into ONNX at `path` with batch and sequence axes dynamic; returns the graph's form."""
    module, form = graph_module(model)
    # (2, 16) with one padded row: the mask path is traced for general masks, not an all-ones shortcut
    input_ids = torch.full((2, 16), 5, dtype=torch.long)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    dynamic = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
               "logits": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        # Known and harmless here: the tracer's deprecation, transformers' padding branch on kv length (equal
        # to the mask's own length in an encoder), aten::index with non-negative indices only.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*aten::index.*")
        torch.onnx.export(module, (input_ids, attention_mask), str(path), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True)
    return form
