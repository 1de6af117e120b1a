"""The module `kobert export` traces: a BERT classifier's last layer for `[CLS]` only gives the stock logits;
other encoders are traced whole."""

from __future__ import annotations

import torch

from kobert_ops.model import load_classifier
from kobert_ops.onnx_trace import ClsOnlyLastLayer, Logits, graph_module


def padded_batch(vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three rows of different lengths: padding must be masked out of the last layer's keys too."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, vocab, (3, 24), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    attention_mask[2, 17:] = 0
    input_ids[attention_mask == 0] = 1  # KoBERT's [PAD]
    return input_ids, attention_mask


def test_a_bert_classifier_is_traced_with_a_cls_only_last_layer_that_gives_the_stock_logits(tiny_model_dir):
    model = load_classifier(tiny_model_dir).eval()
    module, form = graph_module(model)
    assert isinstance(module, ClsOnlyLastLayer) and form == "cls-only last layer"
    input_ids, attention_mask = padded_batch(model.config.vocab_size)
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
        got = module(input_ids, attention_mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # a change to padding positions changes nothing (their keys are masked in the last layer as well)
    input_ids[1, 12] = 7
    with torch.no_grad():
        torch.testing.assert_close(module(input_ids, attention_mask), expected, atol=1e-5, rtol=1e-5)
    # and the trunk shares the model's weights and leaves the model whole
    assert len(model.bert.encoder.layer) == model.config.num_hidden_layers
    assert module.trunk.embeddings.word_embeddings.weight.data_ptr() == \
        model.bert.embeddings.word_embeddings.weight.data_ptr()


def test_another_encoder_is_traced_whole(electra_classifier_dir):
    module, form = graph_module(load_classifier(electra_classifier_dir).eval())
    assert isinstance(module, Logits) and form == "full"
