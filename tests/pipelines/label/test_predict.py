"""Predict stage: the actor labels accepted rows like `Predictor` does and leaves rejected rows unlabeled."""

import json
import os

import numpy as np
import pyarrow as pa

from kobert_ops.predictor import Predictor
from pipelines.label.predict import LabelPredictor
from pipelines.label.tokenize import tokenize
from pipelines.label.validate import mark_rejected


def test_labels_match_the_predictor_and_skip_rejected_rows(tiny_model_dir, real_reviews):
    texts = [t for t in real_reviews[:300] if t and t.strip()]
    texts_with_gaps = texts[:100] + [None, ""] + texts[100:]
    batch = mark_rejected(pa.table({"review_id": list(range(len(texts_with_gaps))), "text": texts_with_gaps}),
                          text_column="text", id_column="review_id")
    batch = tokenize(batch, tokenizer_dir=str(tiny_model_dir), text_column="text", max_length=128)
    out = LabelPredictor(str(tiny_model_dir), device="cpu", precision="fp32", forward_batch_size=32)(batch)
    expected = Predictor(tiny_model_dir, device="cpu", precision="fp32", batch_size=32).predict(texts)
    label = out["label"].to_numpy()
    probabilities = np.stack(out["probabilities"].to_numpy(zero_copy_only=False))
    kept = np.r_[0:100, 102:len(texts_with_gaps)]
    np.testing.assert_array_equal(label[kept], expected.label)
    np.testing.assert_allclose(probabilities[kept], expected.probabilities, atol=1e-5)
    np.testing.assert_allclose(probabilities[kept].sum(axis=1), 1, atol=1e-5)
    assert out["label_name"].to_pylist()[:100] == expected.label_name[:100]
    assert label[100] == -1 and out["label_name"][101].as_py() is None
    assert "token_ids" not in out.column_names
    # outside Ray: every core, and every row says so
    assert set(out["labeled_by"].to_pylist()) == {json.dumps(
        {"actor_id": "local", "cpus": None, "node_id": "local", "threads": os.cpu_count(),
         "path": {"runtime": "torch", "device": "cpu", "precision": "fp32", "why": "--precision fp32",
                  "forward_batch_size": 32}},
        sort_keys=True)}


def test_full_bf16_stays_close_to_fp32(tiny_model_dir, real_reviews):
    texts = [t for t in real_reviews[:400] if t and t.strip()]
    batch = mark_rejected(pa.table({"review_id": list(range(len(texts))), "text": texts}),
                          text_column="text", id_column="review_id")
    batch = tokenize(batch, tokenizer_dir=str(tiny_model_dir), text_column="text", max_length=128)
    fp32 = LabelPredictor(str(tiny_model_dir), device="cpu", precision="fp32")(batch)
    bf16 = LabelPredictor(str(tiny_model_dir), device="cpu", precision="bf16-full")(batch)
    difference = np.abs(np.stack(fp32["probabilities"].to_numpy(zero_copy_only=False))
                        - np.stack(bf16["probabilities"].to_numpy(zero_copy_only=False)))
    assert difference.max() < 0.02
    assert bf16["score"].type == pa.float32()


def test_last_layer_shortcut_keeps_cls_exact(tiny_model_dir, real_reviews):
    """Only [CLS] goes through the last layer's feed-forward; the probabilities equal the full model's."""
    texts = [t for t in real_reviews[:200] if t and t.strip()]
    batch = mark_rejected(pa.table({"review_id": list(range(len(texts))), "text": texts}),
                          text_column="text", id_column="review_id")
    batch = tokenize(batch, tokenizer_dir=str(tiny_model_dir), text_column="text", max_length=128)
    ours = LabelPredictor(str(tiny_model_dir), device="cpu", precision="fp32")(batch)
    full = Predictor(tiny_model_dir, device="cpu", precision="fp32").predict(texts)
    np.testing.assert_allclose(np.stack(ours["probabilities"].to_numpy(zero_copy_only=False)),
                               full.probabilities, atol=1e-5)


def test_other_encoders_label_like_the_predictor_and_keep_their_layers(roberta_classifier_dir, electra_classifier_dir,
                                                                        real_reviews):
    """RoBERTa and ELECTRA rows (ELECTRA's ids beyond int16) through the tokenize stage and the actor: the same
    labels as `Predictor` on the raw texts, label names from each model's config, no BERT-only shortcut applied."""
    texts = [t for t in real_reviews[:300] if t and t.strip()]
    batch = mark_rejected(pa.table({"review_id": list(range(len(texts))), "text": texts}),
                          text_column="text", id_column="review_id")
    for directory, names in ((roberta_classifier_dir, {"부정", "긍정"}), (electra_classifier_dir, {"나쁨", "좋음"})):
        tokenized = tokenize(batch, tokenizer_dir=str(directory), text_column="text", max_length=64)
        actor = LabelPredictor(str(directory), device="cpu", precision="fp32", max_length=64)
        layer = getattr(actor.predictor.model, actor.predictor.model.base_model_prefix).encoder.layer[-1]
        assert type(layer.attention.output).__name__.endswith("SelfOutput")  # not wrapped by the [CLS] shortcut
        out = actor(tokenized)
        expected = Predictor(directory, device="cpu", precision="fp32", max_length=64).predict(texts)
        np.testing.assert_allclose(np.stack(out["probabilities"].to_numpy(zero_copy_only=False)),
                                   expected.probabilities, atol=1e-5)
        assert out["label_name"].to_pylist() == expected.label_name and set(expected.label_name) <= names
