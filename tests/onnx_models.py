"""A random-weight classifier whose labels depend on the review: what label-agreement checks need.

A freshly initialised classifier gives every review nearly the same probabilities (0.479-0.481 on the tiny
preset over NSMC): every row gets one label, so "the export keeps 100% of the labels" would hold for any graph.
`decisive_classifier` keeps the random encoder and replaces the head by one along the direction in which the
pooled `[CLS]` vectors of real reviews vary most, centred and scaled so that the logit difference over those
reviews has mean 0 and standard deviation `spread`: about half the rows get each label, a few sit near a tie,
as with a trained model. Used by the ONNX tests and by bench/onnx_throughput.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def decisive_classifier(model_dir: Path, texts: Sequence[str], output: Path, spread: float = 2.0) -> Path:
    """Save a copy of `model_dir` with the recalibrated head into `output` (see the module docstring)."""
    import torch

    from kobert_ops.model import load_classifier, save_classifier
    from kobert_ops.tokenizer import load_tokenizer

    model = load_classifier(model_dir).eval()
    tokenizer = load_tokenizer(model_dir)
    encoded = tokenizer.batch_encode(list(texts), max_length=128, padding="longest")
    with torch.inference_mode():
        pooled = model.bert(input_ids=torch.from_numpy(encoded["input_ids"]),
                            attention_mask=torch.from_numpy(encoded["attention_mask"])).pooler_output  # (N, H)
    mean = pooled.mean(dim=0)
    direction = torch.linalg.svd(pooled - mean, full_matrices=False).Vh[0]  # (H,) first principal axis
    scale = spread / float(((pooled - mean) @ direction).std())
    with torch.no_grad():  # logit 1 − logit 0 = scale · (pooled − mean) · direction
        model.classifier.weight.copy_(torch.stack([-direction, direction]) * scale / 2)
        offset = float(mean @ direction) * scale / 2
        model.classifier.bias.copy_(torch.tensor([offset, -offset]))
    save_classifier(model, tokenizer, output)
    return output


def decisive_with_fp32_export(model_dir: Path, reviews: Sequence[str | None], root: Path) -> dict[str, Path]:
    """`decisive_classifier` of `model_dir` (head fitted on 300 real reviews) in `root/torch`, and its checked
    fp32 export (300 other reviews) in `root/onnx`: a model and its export whose labels vary by review."""
    from kobert_ops.onnx_export import export_onnx

    texts = [text for text in reviews if text and text.strip()]
    torch_dir = decisive_classifier(model_dir, texts[:300], root / "torch")
    export_onnx(torch_dir, root / "onnx", texts=texts[300:600], num_threads=1)
    return {"torch": torch_dir, "onnx": root / "onnx"}


def assert_labels_like_pytorch_fp32(predictor, model_dir: Path, sample: Sequence[str]) -> None:
    """An fp32 export's `predictor` labels `sample` as PyTorch fp32 (stock forward) labels it with the model it
    came from, up to 512 positions: ≥ 99.9% equal labels, probabilities within 1e-4, on a sample where both
    labels are common (so agreement is no given)."""
    import numpy as np

    from kobert_ops.predictor import Predictor

    got = predictor.predict(sample)
    expected = Predictor(model_dir, device="cpu", precision="fp32", max_length=512, batch_size=32,
                         num_threads=1, fused=False).predict(sample)
    assert 0.2 < expected.label.mean() < 0.8
    assert (got.label == expected.label).mean() >= 0.999
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-4)
    assert got.label_name == expected.label_name
