"""The masked-positions head must train exactly like the stock head and save a stock directory."""

import json

import torch
from transformers import AutoModelForMaskedLM, BertForMaskedLM

from kobert_ops.masked_lm import MaskedPositionsLM
from kobert_ops.masking import IGNORE_INDEX
from kobert_ops.model import bert_config


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 8002, (4, 12), generator=generator)
    attention = torch.ones_like(ids)
    attention[1, 8:] = 0
    labels = torch.full_like(ids, IGNORE_INDEX)
    chosen = torch.rand(ids.shape, generator=generator) < 0.3
    chosen[1, 8:] = False
    labels[chosen] = ids[chosen]
    return ids, attention, labels


def test_loss_and_gradients_equal_the_stock_head():
    torch.manual_seed(3)
    sparse = MaskedPositionsLM(bert_config("tiny", dropout=0.0))
    stock = BertForMaskedLM(sparse.config)
    stock.load_state_dict(sparse.state_dict())
    ids, attention, labels = _batch()
    ours = sparse(input_ids=ids, attention_mask=attention, labels=labels)
    theirs = stock(input_ids=ids, attention_mask=attention, labels=labels)
    assert ours.logits.shape == (int((labels != IGNORE_INDEX).sum()), 8002)
    torch.testing.assert_close(ours.loss, theirs.loss, rtol=1e-5, atol=1e-5)
    ours.loss.backward()
    theirs.loss.backward()
    stock_grads = dict(stock.named_parameters())
    for name, parameter in sparse.named_parameters():
        torch.testing.assert_close(parameter.grad, stock_grads[name].grad, rtol=1e-4, atol=1e-6, msg=name)


def test_without_labels_it_is_the_stock_model():
    torch.manual_seed(4)
    model = MaskedPositionsLM(bert_config("tiny")).eval()
    ids, attention, _ = _batch(1)
    assert model(input_ids=ids, attention_mask=attention).logits.shape == (4, 12, 8002)


def test_saved_directory_names_the_stock_class(tmp_path):
    torch.manual_seed(5)
    model = MaskedPositionsLM(bert_config("tiny")).eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is BertForMaskedLM
    ids, attention, _ = _batch(2)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(input_ids=ids, attention_mask=attention).logits,
                                   model(input_ids=ids, attention_mask=attention).logits)


def test_a_batch_without_masked_positions_has_a_zero_loss_not_nan():
    import math

    import torch

    from kobert_ops.masked_lm import MaskedPositionsLM
    from kobert_ops.model import bert_config

    model = MaskedPositionsLM(bert_config("tiny"))
    loss = model(input_ids=torch.tensor([[2, 100, 3]]), labels=torch.full((1, 3), -100)).loss
    assert math.isfinite(float(loss)) and float(loss) == 0.0
    loss.backward()  # still a graph: DDP's all-reduce sees every parameter's (zero) gradient
