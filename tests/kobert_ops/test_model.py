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


@pytest.mark.parametrize("name, head", [("roberta", "RobertaForSequenceClassification"),
                                        ("electra", "ElectraForSequenceClassification")])
def test_other_encoders_get_their_architectures_own_fresh_head(encoder_dirs, name, head):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(encoder_dirs[name])  # RobertaForMaskedLM's body / ElectraModel
    model = load_classifier(encoder_dirs[name], labels=["부정", "중립", "긍정"])
    assert type(model).__name__ == head and labels_of(model) == ["부정", "중립", "긍정"]
    body = getattr(model, model.base_model_prefix)
    assert torch.equal(body.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    with pytest.raises(ValueError, match="pass the label names"):
        load_classifier(encoder_dirs[name])


def test_saved_encoder_classifiers_load_in_plain_transformers(roberta_classifier_dir, electra_classifier_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kobert_ops.tokenizer import load_tokenizer

    for directory, labels in ((roberta_classifier_dir, ["부정", "긍정"]), (electra_classifier_dir, ["나쁨", "좋음"])):
        plain = AutoModelForSequenceClassification.from_pretrained(directory)
        assert [plain.config.id2label[i] for i in range(2)] == labels
        ours = load_classifier(directory)
        for key, tensor in plain.state_dict().items():
            assert torch.equal(tensor, ours.state_dict()[key]), key
        assert AutoTokenizer.from_pretrained(directory).encode("재밌다") == load_tokenizer(directory).encode("재밌다")


def test_vocabulary_mismatch_is_refused_in_one_line(encoder_dirs, tiny_model_dir, tokenizer_dir):
    from transformers import AutoConfig

    from kobert_ops.model import check_vocabulary
    from kobert_ops.tokenizer import load_tokenizer

    electra = load_tokenizer(encoder_dirs["electra"])
    kobert_config = AutoConfig.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError) as refused:
        check_vocabulary(kobert_config, electra, str(tiny_model_dir), str(encoder_dirs["electra"]))
    message = str(refused.value)
    assert "\n" not in message and "36,000" in message and "8,002" in message and "--tokenizer" in message
    assert str(tiny_model_dir) in message and str(encoder_dirs["electra"]) in message
    roberta_config = AutoConfig.from_pretrained(encoder_dirs["roberta"])  # 4,000 ids: KoBERT's 8,002 overflow it
    with pytest.raises(ValueError, match="8,002 ids .* 4,000"):
        check_vocabulary(roberta_config, load_tokenizer(tokenizer_dir), "roberta", "kobert")
    check_vocabulary(kobert_config, load_tokenizer(tokenizer_dir))
    check_vocabulary(AutoConfig.from_pretrained(encoder_dirs["electra"]), electra)
