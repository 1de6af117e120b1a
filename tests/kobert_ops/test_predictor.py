"""The predictor must give each text the label its own forward pass gives, whatever batch it lands in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kobert_ops.predictor import PASS_COST_IDS, Predictor, bf16_is_fast, length_batches, resolve_precision
from kobert_ops.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def texts(real_reviews):
    return [t for t in real_reviews[:200] if t] + ["재밌다 " * 200]


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor(tiny_model_dir, device="cpu", precision="fp32", batch_size=16, max_length=64)


def padded_ids(batches) -> int:
    return sum(len(rows) * width for rows, width in batches)


@pytest.mark.parametrize("pass_cost", [0, PASS_COST_IDS, 10_000])
def test_length_batches_hold_every_row_once_within_the_size_padded_to_their_longest(pass_cost):
    lengths = np.random.default_rng(7).integers(3, 129, size=3_000)
    batches = list(length_batches(lengths, 128, True, pass_cost))
    assert sorted(np.concatenate([rows for rows, _ in batches]).tolist()) == list(range(3_000))
    assert all(0 < len(rows) <= 128 and width == lengths[rows].max() for rows, width in batches)
    widths = [width for _, width in batches]
    assert widths == sorted(widths)  # shortest rows first, as before


def test_a_pass_is_closed_where_widening_it_would_pad_more_than_a_pass_costs(real_reviews, tokenizer_dir):
    """Real review lengths: fewer padded ids than passes cut by size alone. Inside each pass every widening
    padded the rows it held by at most a pass's cost, and a pass left short was closed because the next rows
    would have padded it by more."""
    lengths = np.asarray(load_tokenizer(tokenizer_dir).batch_encode(
        [t for t in real_reviews[:3000] if t], max_length=128, padding="longest")["valid_length"])
    plain = list(length_batches(lengths, 128, True))
    cut = list(length_batches(lengths, 128, True, PASS_COST_IDS))
    assert padded_ids(cut) < 0.97 * padded_ids(plain) and len(cut) < 2 * len(plain)
    for (rows, width), (following, _) in zip(cut, cut[1:] + [(None, None)]):
        steps = np.unique(lengths[rows])
        for before, after in zip(steps, steps[1:]):
            assert (lengths[rows] <= before).sum() * (after - before) <= PASS_COST_IDS
        if following is not None and len(rows) < 128:
            assert len(rows) * (lengths[following].min() - width) > PASS_COST_IDS


def test_batched_probabilities_equal_single_text_forward(predictor, texts):
    result = predictor.predict(texts)
    assert len(result) == len(texts)
    for row in range(0, len(texts), 37):
        ids = predictor.tokenizer.encode(texts[row])
        if len(ids) > 64:  # truncation keeps [SEP]
            ids = ids[:63] + [predictor.tokenizer.sep_token_id]
        ids = torch.tensor([ids])
        with torch.inference_mode():
            alone = torch.softmax(predictor.model(input_ids=ids).logits, dim=-1)[0].numpy()
        np.testing.assert_allclose(result.probabilities[row], alone, atol=1e-5)


def test_sorting_by_length_keeps_input_order(predictor, texts):
    sorted_run = predictor.predict(texts)
    predictor.sort_by_length = False
    try:
        input_order = predictor.predict(texts)
    finally:
        predictor.sort_by_length = True
    np.testing.assert_allclose(sorted_run.probabilities, input_order.probabilities, atol=1e-5)


def test_outputs_are_consistent(predictor, texts):
    result = predictor.predict(texts)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (result.label == result.probabilities.argmax(axis=1)).all()
    assert result.label_name == [predictor.labels[i] for i in result.label]
    np.testing.assert_allclose(result.score, result.probabilities.max(axis=1))


def test_bf16_stays_close_to_fp32(tiny_model_dir, texts, predictor):
    bf16 = Predictor(tiny_model_dir, device="cpu", precision="bf16", batch_size=16, max_length=64)
    difference = np.abs(bf16.predict(texts).probabilities - predictor.predict(texts).probabilities)
    assert difference.max() < 0.02


def test_full_bf16_casts_weights_but_not_layernorm_and_stays_close(tiny_model_dir, texts, predictor):
    full = Predictor(tiny_model_dir, device="cpu", precision="bf16-full", batch_size=16, max_length=64)
    assert full.model.bert.encoder.layer[0].intermediate.dense.weight.dtype == torch.bfloat16
    assert full.model.bert.embeddings.LayerNorm.weight.dtype == torch.float32
    difference = np.abs(full.predict(texts).probabilities - predictor.predict(texts).probabilities)
    assert difference.max() < 0.02


def test_unknown_precision_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="bf16-full"):
        Predictor(tiny_model_dir, device="cpu", precision="fp16")


def test_unavailable_cuda_is_a_clear_error(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: nothing to refuse")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        Predictor(tiny_model_dir, device="cuda")


def test_cpu_full_bf16_uses_the_fused_forward_only_where_bf16_is_fast(tiny_model_dir, texts, predictor):
    """oneDNN has no bf16 inner product on AVX2-only CPUs: there the stock forward must run, and work."""
    from kobert_ops import fused_bert

    if not fused_bert.fused_kernels_available():
        pytest.skip("this torch build has no oneDNN")
    full = Predictor(tiny_model_dir, device="cpu", precision="bf16-full", batch_size=16, max_length=64)
    assert (full.fused is not None) == bf16_is_fast("cpu")
    assert np.abs(full.predict(texts[:40]).probabilities - predictor.predict(texts[:40]).probabilities).max() < 0.02
    assert Predictor(tiny_model_dir, device="cpu", precision="bf16").fused is None
    assert Predictor(tiny_model_dir, device="cpu", precision="fp32", fused=False).fused is None
    assert Predictor(tiny_model_dir, device="cpu", precision="int8").fused is None


def test_int8_quantizes_every_linear_layer_and_stays_close(tiny_model_dir, texts, predictor):
    int8 = Predictor(tiny_model_dir, device="cpu", precision="int8", batch_size=16, max_length=64)
    linears = [m for m in int8.model.modules() if type(m) is torch.nn.Linear]
    quantized = [m for m in int8.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert not linears and len(quantized) >= 2 * 6 + 2  # per layer: Q, K, V, O, FFN in/out; pooler, classifier
    result = int8.predict(texts)
    reference = predictor.predict(texts)
    assert np.abs(result.probabilities - reference.probabilities).max() < 0.05
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert int8.labels == predictor.labels


def test_int8_is_cpu_only():
    with pytest.raises(ValueError, match="CPU only"):
        resolve_precision("int8", "cuda")
    assert resolve_precision("int8", "cpu") == "int8"


@pytest.mark.parametrize("fixture", ["roberta_classifier_dir", "electra_classifier_dir"])
def test_other_encoders_predict_like_their_own_forward(request, fixture, texts):
    """Through their own tokenizer and padding id: batched, length-sorted rows equal one text alone."""
    from kobert_ops import fused_bert

    directory = request.getfixturevalue(fixture)
    other = Predictor(directory, device="cpu", precision="fp32", batch_size=16, max_length=64)
    assert not fused_bert.supports(other.model) and other.fused is None
    result = other.predict(texts)
    for row in range(0, len(texts), 37):
        ids = torch.tensor([other.tokenizer.batch_encode([texts[row]], max_length=64)["input_ids"][0].tolist()])
        with torch.inference_mode():
            alone = torch.softmax(other.model(input_ids=ids).logits, dim=-1)[0].numpy()
        np.testing.assert_allclose(result.probabilities[row], alone, atol=1e-5)
    assert set(result.label_name) <= set(other.labels) and len(result) == len(texts)


def test_a_tokenizer_of_another_model_is_refused(tiny_model_dir, electra_classifier_dir):
    with pytest.raises(ValueError, match="36,000 ids .* 8,002.*--tokenizer"):
        Predictor(tiny_model_dir, device="cpu", tokenizer=electra_classifier_dir)
