"""Model directories must load in plain transformers with their labels, and encoders get a fresh head."""

from __future__ import annotations

import pytest
import torch

from kobert_ops.hub import ModelNotAvailableError
from kobert_ops.model import PRESETS, bert_config, build_classifier, labels_of, load_classifier, save_classifier


def test_base_preset_is_kobert_base():
    config = bert_config("base")
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (12, 768, 12)
    assert (config.intermediate_size, config.max_position_embeddings, config.vocab_size) == (3072, 512, 8002)
    assert config.pad_token_id == 1


def test_unknown_preset_and_bad_labels_are_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        bert_config("huge")
    with pytest.raises(ValueError, match="unique"):
        build_classifier("tiny", ["a", "a"])
    with pytest.raises(ValueError, match="at least two"):
        build_classifier("tiny", ["only"])


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_classifier_head_is_pooled_cls_dropout_linear(preset):
    model = build_classifier(preset, ["부정", "중립", "긍정"])
    assert model.classifier.out_features == 3
    assert model.classifier.in_features == PRESETS[preset].hidden
    assert isinstance(model.dropout, torch.nn.Dropout)
    assert labels_of(model) == ["부정", "중립", "긍정"]


def test_saved_directory_loads_in_plain_transformers(tmp_path, tokenizer_dir):
    from transformers import AutoModelForSequenceClassification

    from kobert_ops.tokenizer import KoBERTTokenizer

    model = build_classifier("tiny", ["부정", "긍정"])
    save_classifier(model, KoBERTTokenizer.from_pretrained(tokenizer_dir), tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.config.id2label == {0: "부정", 1: "긍정"}
    assert loaded.config.label2id == {"부정": 0, "긍정": 1}
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_encoder_only_checkpoint_gets_fresh_head(tmp_path):
    from transformers import BertModel

    encoder = BertModel(bert_config("tiny"))
    encoder.save_pretrained(tmp_path)  # the skt/kobert-base-v1 layout: BertModel weights, no head
    with pytest.raises(ValueError, match="pass the label names"):
        load_classifier(tmp_path)
    model = load_classifier(tmp_path, labels=["neg", "pos"])
    assert labels_of(model) == ["neg", "pos"]
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)


def test_new_labels_reinitialise_the_head_only(tmp_path, tokenizer_dir):
    from kobert_ops.tokenizer import KoBERTTokenizer

    binary = build_classifier("tiny", ["부정", "긍정"])
    save_classifier(binary, KoBERTTokenizer.from_pretrained(tokenizer_dir), tmp_path)
    three = load_classifier(tmp_path, labels=["부정", "중립", "긍정"])
    assert three.classifier.out_features == 3
    assert torch.equal(three.bert.pooler.dense.weight, binary.bert.pooler.dense.weight)
    same = load_classifier(tmp_path)
    assert torch.equal(same.classifier.weight, binary.classifier.weight)


def test_hub_id_offline_error_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="--local-dir"):
        load_classifier("skt/kobert-base-v1", labels=["부정", "긍정"])
