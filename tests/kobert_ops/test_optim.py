"""No weight decay on biases and LayerNorm; warmup then linear or cosine decay."""

import math

import pytest

from kobert_ops.model import build_classifier
from kobert_ops.optim import build_optimizer, build_scheduler, parameter_groups


def test_bias_and_layernorm_are_not_decayed_and_frozen_are_left_out():
    model = build_classifier("tiny", ["a", "b"])
    for parameter in model.bert.embeddings.parameters():
        parameter.requires_grad = False
    groups = parameter_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = [names[id(p)] for p in groups[0]["params"]]
    exempt = [names[id(p)] for p in groups[1]["params"]]
    assert groups[0]["weight_decay"] == 0.01 and groups[1]["weight_decay"] == 0.0
    assert "bert.encoder.layer.0.attention.self.query.weight" in decayed
    assert "classifier.weight" in decayed
    assert "bert.encoder.layer.0.attention.output.LayerNorm.weight" in exempt
    assert "classifier.bias" in exempt
    assert all(not n.startswith("bert.embeddings.") for n in decayed + exempt)
    assert len(decayed) + len(exempt) == sum(p.requires_grad for p in model.parameters())


def _factors(schedule, total=100, warmup=0.1):
    model = build_classifier("tiny", ["a", "b"])
    optimizer = build_optimizer(model, learning_rate=1.0, weight_decay=0.0)
    scheduler = build_scheduler(optimizer, total_steps=total, warmup_ratio=warmup, schedule=schedule)
    seen = []
    for _ in range(total + 1):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_warmup_then_linear_decay_to_zero():
    seen = _factors("linear")
    assert seen[5] == pytest.approx(0.5) and seen[10] == pytest.approx(1.0)
    assert seen[55] == pytest.approx(0.5)
    assert seen[100] == 0.0


def test_cosine_is_half_way_at_the_middle_of_the_decay():
    seen = _factors("cosine")
    assert seen[55] == pytest.approx(0.5) and seen[10] == pytest.approx(1.0)
    assert seen[100] == pytest.approx(0.0, abs=1e-12)
    assert seen[32] == pytest.approx(0.5 * (1 + math.cos(math.pi * 22 / 90)))


def test_constant_after_warmup():
    seen = _factors("constant")
    assert seen[5] == pytest.approx(0.5) and seen[10:] == [pytest.approx(1.0)] * 91


def test_scheduler_drives_the_optimizer():
    model = build_classifier("tiny", ["a", "b"])
    optimizer = build_optimizer(model, learning_rate=1e-3, weight_decay=0.01)
    scheduler = build_scheduler(optimizer, total_steps=20, warmup_ratio=0.25)
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == 0.0 and seen[1] == pytest.approx(2e-4) and seen[5] == pytest.approx(1e-3)
    assert seen[-1] < seen[10] < seen[5]
    assert all(group["lr"] == pytest.approx(0.0) for group in optimizer.param_groups)


def test_bad_schedule_is_rejected():
    optimizer = build_optimizer(build_classifier("tiny", ["a", "b"]), learning_rate=1e-3, weight_decay=0.0)
    with pytest.raises(ValueError, match="schedule"):
        build_scheduler(optimizer, 10, 0.0, "exponential")
