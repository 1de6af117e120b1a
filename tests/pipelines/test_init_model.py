"""`kobert init-model` through the real console script: the directory loads in plain transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

KOBERT = str(Path(sys.executable).with_name("kobert"))


def test_init_model_base_loads_in_plain_transformers(tmp_path, tokenizer_dir):
    output = tmp_path / "base"
    done = subprocess.run(
        [KOBERT, "init-model", "--preset", "base", "--tokenizer", str(tokenizer_dir),
         "--labels", "부정,긍정", "--output", str(output)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(output)
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 768, 8002)
    model = AutoModelForSequenceClassification.from_pretrained(output)
    assert model.config.id2label == {0: "부정", 1: "긍정"}
    assert json.loads((output / "kobert.json").read_text())["preset"] == "base"

    from kobert_ops.tokenizer import KoBERTTokenizer

    assert KoBERTTokenizer.from_pretrained(output).encode("한국어 모델을 공유합니다.")[1] == 4958


def test_cli_help_lists_commands():
    done = subprocess.run([KOBERT, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "init-model" in done.stdout


def test_missing_tokenizer_is_a_short_error(tmp_path):
    done = subprocess.run(
        [KOBERT, "init-model", "--tokenizer", str(tmp_path / "no-such-dir"), "--output", str(tmp_path / "m")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 2
    assert "no-such-dir" in done.stderr and "Traceback" not in done.stderr


def test_init_model_with_another_encoders_tokenizer_sizes_embeddings_to_it(tmp_path, encoder_dirs):
    """A random BERT for the ELECTRA tokenizer: 36,000 embeddings, its [PAD] id, its tokenizer files inside."""
    from transformers import AutoConfig, AutoTokenizer

    from kobert_ops.predictor import Predictor
    from pipelines.init_model import InitModelConfig, init_model

    output = tmp_path / "bert-electra-vocab"
    init_model(InitModelConfig(output=str(output), tokenizer=str(encoder_dirs["electra"])))
    config = AutoConfig.from_pretrained(output)
    reference = AutoTokenizer.from_pretrained(encoder_dirs["electra"])
    assert (config.vocab_size, config.pad_token_id) == (36_000, reference.pad_token_id) == (36_000, 0)
    assert AutoTokenizer.from_pretrained(output).encode("재밌다 최고") == reference.encode("재밌다 최고")
    assert len(Predictor(output, device="cpu", precision="fp32").predict(["재밌다 최고", "별로"])) == 2
