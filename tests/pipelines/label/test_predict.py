"""Predict stage: the actor labels accepted rows like `Predictor` does and leaves rejected rows unlabeled."""

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
