"""The training loop's pieces on one process (world size 1, no Ray): it learns, checkpoints round-trip."""

import numpy as np
import pandas as pd
import pytest
import torch

from kobert_ops.batching import bucketed_batches
from kobert_ops.optim import build_optimizer, build_scheduler
from kobert_ops.tokenizer import KoBERTTokenizer
from pipelines.core import checkpoint as checkpoints
from pipelines.core.checkpoint import Position
from pipelines.core.collectives import fingerprint
from pipelines.core.precision import autocast_context, grad_scaler, resolve_training_precision
from pipelines.core.worker import loss_curve, optimizer_step
from pipelines.train.config import ClusterConfig, DataConfig, ModelConfig, TrainingConfig, TrainJob
from pipelines.train.objective import build_model, evaluate


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these tests share 2 cores with other work, where spinning OpenMP threads stall."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pools(frame, rows=256):
    for start in range(0, len(frame), rows):
        part = frame.iloc[start : start + rows]
        yield {"text": part["text"].to_numpy(dtype=object), "label": part["label"].to_numpy()}


def _training_autocast():
    """What a training worker uses on this CPU with `--precision auto`."""
    return autocast_context(resolve_training_precision("auto", "cpu"), "cpu")


def _job(labels, model="tiny", freeze=False, **training):
    return TrainJob(model=ModelConfig(model=model, freeze_encoder=freeze),
                    data=DataConfig(train="-", eval="-", max_length=64), training=TrainingConfig(**training),
                    cluster=ClusterConfig(output="-"), labels=labels)


def _epoch(model, batches, optimizer, scheduler, scaler=None, autocast=None):
    losses, rows = [], 0
    model.train()
    for batch in batches:
        tensors = {key: torch.from_numpy(value) for key, value in batch.items()}
        losses.append(optimizer_step(model, tensors, optimizer, scheduler, scaler, 1.0, autocast or _training_autocast()))
        rows += len(batch["labels"])
    return [float(loss) for loss in losses], rows


def test_three_class_model_learns_on_real_reviews(nsmc_ternary, tokenizer_dir):
    """Multi-class end to end on one process: better than chance (1/3, loss ln 3) after two epochs."""
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    train = pd.read_parquet(nsmc_ternary / "train.parquet")
    held_out = pd.read_parquet(nsmc_ternary / "eval.parquet")
    model = build_model(_job(["부정", "중립", "긍정"], learning_rate=2e-3))
    optimizer = build_optimizer(model, 2e-3, 0.01)
    scheduler = build_scheduler(optimizer, total_steps=2 * len(train) // 32, warmup_ratio=0.1)
    encode = lambda texts: tokenizer.batch_encode(texts, max_length=64)  # noqa: E731
    rng = np.random.default_rng(0)
    for _ in range(2):
        _, rows = _epoch(model, bucketed_batches(_pools(train), encode, 32, "text", "label", rng), optimizer, scheduler)
    assert rows == len(train)
    matrix, eval_loss = evaluate(model, bucketed_batches(_pools(held_out), encode, 64, "text", "label"), 3,
                                 _training_autocast(), "cpu", world_size=1)
    assert matrix.shape == (3, 3) and matrix.sum() == len(held_out)
    assert eval_loss < np.log(3)
    assert np.trace(matrix) / matrix.sum() > 0.42  # a neutral class is hard for a 2-layer model from scratch


def test_fp16_with_loss_scaling_takes_real_steps(nsmc_2k, tokenizer_dir):
    """The path of GPUs without bf16 units (T4, V100), run on CPU: the scaler steps and the loss falls."""
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    train = pd.read_parquet(nsmc_2k / "train.parquet").iloc[:512]
    model = build_model(_job(["부정", "긍정"]))
    optimizer = build_optimizer(model, 1e-3, 0.0)
    scheduler = build_scheduler(optimizer, 64)
    scaler = grad_scaler("fp16", "cpu")
    before = fingerprint(model)
    batches = bucketed_batches(_pools(train), lambda t: tokenizer.batch_encode(t, max_length=32), 16, "text", "label")
    losses, _ = _epoch(model, batches, optimizer, scheduler, scaler, autocast_context("fp16", "cpu"))
    assert all(np.isfinite(losses)) and fingerprint(model) != before
    assert scaler.get_scale() > 0 and optimizer.state_dict()["state"]


def test_checkpoint_round_trip_restores_weights_optimizer_position_and_history(tmp_path, tokenizer_dir):
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    model = build_model(_job(["부정", "긍정"]))
    optimizer = build_optimizer(model, 1e-3, 0.01)
    scheduler = build_scheduler(optimizer, 100, 0.1)
    optimizer_step(model, {"input_ids": torch.tensor([[2, 100, 3]]), "labels": torch.tensor([1])}, optimizer,
                   scheduler, None, 1.0, _training_autocast())
    history = [{"epoch": 1, "eval_macro_f1": 0.5}]
    position = Position(epoch=2, steps_done=7, finished=False, global_step=19, loss_sum=3.5, loss_weight=7.0,
                        rows=224, step_losses=[0.5] * 7)
    shape = {"world_size": 2, "batch_size": 32, "steps_per_epoch": 12}
    checkpoints.save(tmp_path, model, tokenizer, optimizer, scheduler, None, position, history,
                     extra={"model": "tiny"}, shape=shape)

    fresh = build_model(_job(["부정", "긍정"], seed=7))
    assert fingerprint(fresh) != fingerprint(model)
    checkpoints.load_weights(tmp_path, fresh)
    assert fingerprint(fresh) == fingerprint(model)
    fresh_optimizer = build_optimizer(fresh, 1e-3, 0.01)
    fresh_scheduler = build_scheduler(fresh_optimizer, 100, 0.1)
    restored, restored_history, restored_shape = checkpoints.load_state(tmp_path, fresh_optimizer, fresh_scheduler, None)
    assert (restored, restored_history, restored_shape) == (position, history, shape)
    assert restored.next_epoch() == 2 and restored.steps_to_skip(2) == 7  # continue epoch 2 at its 8th step
    assert fresh_scheduler.last_epoch == 1 and fresh_optimizer.state_dict()["state"]
    exported = checkpoints.export_model(tmp_path, tmp_path / "exported")
    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(exported)
    assert loaded.config.id2label == {0: "부정", 1: "긍정"}


def test_an_mlm_checkpoint_loads_back_despite_its_tied_decoder(tmp_path, tokenizer_dir):
    """`kobert pretrain --resume` died here: save_pretrained leaves out the decoder tied to the embeddings."""
    from kobert_ops.masked_lm import MaskedPositionsLM
    from kobert_ops.model import bert_config

    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model = MaskedPositionsLM(bert_config("tiny"))
    optimizer = build_optimizer(model, 1e-3, 0.0)
    scheduler = build_scheduler(optimizer, 10)
    checkpoints.save(tmp_path, model, tokenizer, optimizer, scheduler, None, Position(epoch=1, global_step=3), [],
                     extra={}, shape={})
    torch.manual_seed(1)
    fresh = MaskedPositionsLM(bert_config("tiny"))
    checkpoints.load_weights(tmp_path, fresh)
    assert fingerprint(fresh) == fingerprint(model)
    assert fresh.cls.predictions.decoder.weight.data_ptr() == fresh.bert.embeddings.word_embeddings.weight.data_ptr()
    from safetensors.torch import load_file, save_file

    weights = str(tmp_path / "model" / "model.safetensors")
    save_file({name: tensor for name, tensor in load_file(weights).items() if "layer.1." not in name}, weights)
    with pytest.raises(RuntimeError, match="missing"):  # a real mismatch still fails
        checkpoints.load_weights(tmp_path, fresh)


def test_freeze_encoder_keeps_the_pooler_and_head_trainable():
    model = build_model(_job(["a", "b"], freeze=True))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"]


def test_a_classifier_from_mlm_output_trains_its_fresh_pooler_under_freeze(tmp_path, tokenizer_dir):
    """`kobert pretrain` output has no pooler: with --freeze-encoder it used to stay random and frozen."""
    from kobert_ops.masked_lm import MaskedPositionsLM
    from kobert_ops.model import bert_config, save_classifier

    save_classifier(MaskedPositionsLM(bert_config("tiny")), KoBERTTokenizer.from_pretrained(tokenizer_dir), tmp_path)
    model = build_model(_job(["부정", "긍정"], model=str(tmp_path), freeze=True))
    pooler = model.bert.pooler.dense.weight
    assert pooler.requires_grad
    before = pooler.detach().clone()
    optimizer = build_optimizer(model, 1e-2, 0.0)
    optimizer_step(model, {"input_ids": torch.tensor([[2, 100, 3]]), "labels": torch.tensor([1])}, optimizer,
                   build_scheduler(optimizer, 10), None, 1.0, _training_autocast())
    assert not torch.equal(before, pooler.detach())
    assert not model.bert.encoder.layer[0].attention.self.query.weight.requires_grad


def test_default_learning_rate_follows_the_encoder_width(tmp_path, tokenizer_dir):
    from kobert_ops.masked_lm import MaskedPositionsLM
    from kobert_ops.model import bert_config, save_classifier
    from pipelines.core.models import default_learning_rate

    assert default_learning_rate("small") == 1e-3  # a preset from scratch
    for preset, rate in (("small", 5e-4), ("base", 5e-5)):
        folder = tmp_path / preset
        config = bert_config(preset)
        config.num_hidden_layers = 1  # the width decides; keep the test light
        save_classifier(MaskedPositionsLM(config), KoBERTTokenizer.from_pretrained(tokenizer_dir), folder)
        assert default_learning_rate(str(folder)) == rate


def test_loss_curve_averages_chunks_at_global_steps():
    assert loss_curve([1.0, 3.0, 2.0, 4.0], first_step=100, points=2) == [[102, 2.0], [104, 3.0]]
    assert len(loss_curve([0.5] * 1000, 0)) == 50
    assert loss_curve([], 0) == []
