"""Hub ids load offline from the Hugging Face cache with the hub's own tokenizer files, never shared/kobert's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kobert_ops.hub import ModelNotAvailableError, resolve
from kobert_ops.model import labels_of, load_classifier
from kobert_ops.tokenizer import KoBERTTokenizer, load_tokenizer
from tests.hub_models import HUB_IDS


def test_snapshot_resolves_offline_in_the_hubs_layout(offline_hub, hub_cache):
    from huggingface_hub import snapshot_download

    snapshot = Path(snapshot_download(HUB_IDS["kobert"]))
    assert snapshot.parent.parent == hub_cache / "models--skt--kobert-base-v1"
    assert (snapshot / "config.json").is_symlink() and (snapshot / "config.json").resolve().parent.name == "blobs"
    assert resolve(HUB_IDS["kobert"]) == snapshot


def test_kobert_base_v1_tokenizer_is_the_hubs_spiece(offline_hub, hub_cache):
    tokenizer = load_tokenizer("skt/kobert-base-v1")
    assert isinstance(tokenizer, KoBERTTokenizer) and tokenizer.vocab_path is None
    assert tokenizer.sentencepiece_model.name == "spiece.model"
    assert hub_cache in tokenizer.sentencepiece_model.parents
    assert tokenizer.encode("한국어 모델을 공유합니다.") == [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]
    assert (tokenizer.vocab_size, tokenizer.pad_token_id) == (8002, 1)


def test_kobert_base_v1_gets_a_fresh_head_offline(offline_hub, encoder_dirs):
    from transformers import BertModel

    model = load_classifier("skt/kobert-base-v1", labels=["부정", "긍정"])
    assert labels_of(model) == ["부정", "긍정"] and model.config.vocab_size == 8002
    encoder = BertModel.from_pretrained(encoder_dirs["kobert"])  # the same pytorch_model.bin
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    with torch.inference_mode():
        ids = torch.tensor([load_tokenizer("skt/kobert-base-v1").encode("재밌어요")])
        assert model(input_ids=ids).logits.shape == (1, 2)


def test_other_encoders_load_by_hub_id(offline_hub):
    tokenizer = load_tokenizer(HUB_IDS["electra"])
    assert not isinstance(tokenizer, KoBERTTokenizer) and tokenizer.vocab_size == 36_000
    model = load_classifier(HUB_IDS["roberta"], labels=["부정", "긍정"])
    assert type(model).__name__ == "RobertaForSequenceClassification"


def test_an_id_missing_from_the_cache_says_what_to_do(offline_hub):
    with pytest.raises(ModelNotAvailableError, match="hf download test-encoders/absent"):
        load_tokenizer("test-encoders/absent")


def test_a_missing_folder_inside_an_existing_one_is_a_missing_path_not_a_hub_id(tmp_path, monkeypatch):
    """`models/my-model` where `models/` exists is a folder the user meant, not the hub's `models` owner."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(FileNotFoundError, match=r"^no model folder models/my-model \(models/ exists, but holds "
                                                r"no my-model\)"):
        resolve("models/my-model")


def test_an_unreachable_hub_id_is_one_line_naming_the_whole_reference(offline_hub):
    with pytest.raises(ModelNotAvailableError) as raised:
        resolve("test-encoders/absent-model")
    message = str(raised.value)
    assert "\n" not in message and "'test-encoders/absent-model'" in message
    assert "no local folder test-encoders/absent-model either" in message
