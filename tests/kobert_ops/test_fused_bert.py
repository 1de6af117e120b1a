"""The fused CPU forward must compute what the stock transformers forward computes."""

import copy

import pytest
import torch

from kobert_ops import fused_bert
from kobert_ops.model import build_classifier, load_classifier
from kobert_ops.predictor import cast_to_bf16

pytestmark = pytest.mark.skipif(not fused_bert.fused_kernels_available(), reason="this torch build has no oneDNN")


@pytest.fixture(scope="module")
def batch(real_reviews, tokenizer_dir):
    from kobert_ops.tokenizer import KoBERTTokenizer

    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    texts = [t for t in real_reviews[:300] if t][:48] + ["재밌다 " * 100]
    encoded = tokenizer.batch_encode(texts, max_length=96, padding="longest")  # uneven rows: real padding
    return torch.from_numpy(encoded["input_ids"]), torch.from_numpy(encoded["attention_mask"]).long()


@pytest.fixture(scope="module")
def small_model():
    return build_classifier("small", labels=["부정", "중립", "긍정"], seed=11).eval()


def test_fp32_logits_equal_the_stock_forward(small_model, batch):
    ids, mask = batch
    with torch.inference_mode():
        stock = small_model(input_ids=ids, attention_mask=mask).logits
        fused = fused_bert.FusedBertClassifier(small_model)(ids, mask)
    assert fused.shape == stock.shape == (len(ids), 3)
    torch.testing.assert_close(fused, stock, rtol=1e-4, atol=1e-5)


def test_bf16_is_as_close_to_fp32_as_the_stock_bf16_forward(small_model, batch):
    from kobert_ops.predictor import bf16_is_fast

    if not bf16_is_fast("cpu"):  # Predictor never fuses there (see its test of that)
        pytest.skip("this CPU has no bf16 units (AMX/AVX-512-bf16): oneDNN has no bf16 inner product")
    ids, mask = batch
    with torch.inference_mode():
        reference = small_model(input_ids=ids, attention_mask=mask).logits
        bf16 = copy.deepcopy(small_model)
        cast_to_bf16(bf16)
        stock_error = (bf16(input_ids=ids, attention_mask=mask).logits.float() - reference).abs().max()
        fused_error = (fused_bert.FusedBertClassifier(bf16)(ids, mask).float() - reference).abs().max()
    assert fused_error <= 2 * stock_error + 1e-3, (fused_error, stock_error)


def test_padding_does_not_change_a_row(small_model, batch):
    ids, mask = batch
    forward = fused_bert.FusedBertClassifier(small_model)
    length = int(mask[0].sum())
    with torch.inference_mode():
        alone = forward(ids[:1, :length], mask[:1, :length])
        padded = forward(ids[:1], mask[:1])
    torch.testing.assert_close(alone, padded, rtol=1e-4, atol=1e-5)


def test_only_plain_bert_classifiers_are_fused(tiny_model_dir):
    model = load_classifier(tiny_model_dir)
    assert fused_bert.supports(model)
    model.config.hidden_act = "gelu_new"  # tanh-approximated GELU: not what the fused kernel computes
    assert not fused_bert.supports(model)
