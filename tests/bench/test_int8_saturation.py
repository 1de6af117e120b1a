"""bench/int8_saturation.py: counts the u8×s8 pair sums that leave 16 bits on CPUs without VNNI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import int8_saturation  # noqa: E402


def test_a_pair_saturates_only_beyond_16_bits_either_way():
    activations = np.array([[[255, 255, 10, 10], [0, 0, 0, 0]]], dtype=np.uint8)  # (1 row, 2 ids, K=4)
    for weights, expected in [([127, 127, 127, 127], 1),  # 255·127·2 = 64,770; the (10, 10) pair fits
                              ([64, 64, 127, 127], 0),  # 255·64·2 = 32,640 fits: 7-bit weights never saturate
                              ([-128, -128, 1, 1], 1),  # -65,280
                              ([-64, -64, 1, 1], 0),  # -32,640 fits
                              ([127, -128, 127, 127], 0)]:  # products of both signs: -255
        saturated, rows = int8_saturation.saturated_pairs(activations, np.array(weights, dtype=np.int32)[:, None])
        assert saturated == expected, weights
        assert list(rows) == ([0] if expected else [])  # the first id of the row
    odd = np.array([[200, 200, 200]], dtype=np.uint8)  # K odd: padded with a zero, as the kernel does
    assert int8_saturation.saturated_pairs(odd, np.array([[127], [127], [127]], dtype=np.int32))[0] == 1


def test_an_export_of_this_release_cannot_saturate(tiny_model_dir, real_reviews, tmp_path):
    from kobert_ops.onnx_export import export_onnx

    texts = [text for text in real_reviews if text and text.strip()]
    export_onnx(tiny_model_dir, tmp_path / "int8", texts=texts[:100], quantize="int8", num_threads=1,
                min_agreement=0)
    counted = int8_saturation.count(tmp_path / "int8", texts[100:300])
    assert counted["products"] == 12 and counted["texts"] == 200
    assert counted["saturated_pair_sums"] == 0 and counted["texts_touched"] == 0
