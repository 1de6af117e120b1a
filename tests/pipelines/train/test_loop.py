"""The training loop's pieces on one process (world size 1, no Ray): it learns, checkpoints round-trip."""

import numpy as np
import pandas as pd
import pytest
import torch

from kobert_ops.batching import bucketed_batches
from kobert_ops.optim import build_optimizer, build_scheduler
from kobert_ops.predictor import resolve_precision
from kobert_ops.tokenizer import KoBERTTokenizer
from pipelines.train import checkpoint as checkpoints
from pipelines.train.config import ClusterConfig, DataConfig, ModelConfig, TrainingConfig, TrainJob
from pipelines.train.loop import build_model, evaluate, fingerprint, precision_context, run_epoch
from pipelines.train.report import best_entry


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
    return precision_context(resolve_precision("auto", "cpu"), "cpu")


def _job(labels, **training):
    return TrainJob(model=ModelConfig(model="tiny"), data=DataConfig(train="-", eval="-", max_length=64),
                    training=TrainingConfig(**training), cluster=ClusterConfig(output="-"), labels=labels)


def test_three_class_model_learns_on_real_reviews(nsmc_ternary, tokenizer_dir):
    """Multi-class end to end on one process: better than chance (1/3, loss ln 3) after two epochs."""
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    train = pd.read_parquet(nsmc_ternary / "train.parquet")
    held_out = pd.read_parquet(nsmc_ternary / "eval.parquet")
    job = _job(["부정", "중립", "긍정"], learning_rate=2e-3)
    model = build_model(job)
    optimizer = build_optimizer(model, 2e-3, 0.01)
    scheduler = build_scheduler(optimizer, total_steps=2 * len(train) // 32, warmup_ratio=0.1)
    encode = lambda texts: tokenizer.batch_encode(texts, max_length=64)  # noqa: E731
    rng = np.random.default_rng(0)
    for _ in range(2):
        trained = run_epoch(model, bucketed_batches(_pools(train), encode, 32, "text", "label", rng), optimizer,
                            scheduler, 1.0, _training_autocast(), "cpu", world_size=1)
    assert trained["train_samples"] == len(train)
    matrix, eval_loss = evaluate(model, bucketed_batches(_pools(held_out), encode, 64, "text", "label"), 3,
                                 _training_autocast(), "cpu", world_size=1)
    assert matrix.shape == (3, 3) and matrix.sum() == len(held_out)
    assert eval_loss < np.log(3)
    assert np.trace(matrix) / matrix.sum() > 0.42  # a neutral class is hard for a 2-layer model from scratch


def test_max_steps_per_epoch_stops_early(nsmc_2k, tokenizer_dir):
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    train = pd.read_parquet(nsmc_2k / "train.parquet")
    model = build_model(_job(["부정", "긍정"]))
    optimizer = build_optimizer(model, 1e-3, 0.0)
    scheduler = build_scheduler(optimizer, 10)
    batches = bucketed_batches(_pools(train), lambda t: tokenizer.batch_encode(t, max_length=32), 16, "text", "label")
    trained = run_epoch(model, batches, optimizer, scheduler, 1.0, torch.autocast("cpu", enabled=False), "cpu", 1, 3)
    assert trained["steps"] == 3 and trained["train_samples"] == 48


def test_checkpoint_round_trip_restores_weights_optimizer_and_history(tmp_path, tokenizer_dir):
    tokenizer = KoBERTTokenizer.from_pretrained(tokenizer_dir)
    job = _job(["부정", "긍정"])
    model = build_model(job)
    optimizer = build_optimizer(model, 1e-3, 0.01)
    scheduler = build_scheduler(optimizer, 100, 0.1)
    loss = model(input_ids=torch.tensor([[2, 100, 3]]), labels=torch.tensor([1])).loss
    loss.backward()
    optimizer.step()
    scheduler.step()
    history = [{"epoch": 1, "eval_macro_f1": 0.5}]
    checkpoints.save(tmp_path, model, tokenizer, optimizer, scheduler, 1, 1, history, extra={"model": "tiny"})

    fresh = build_model(_job(["부정", "긍정"], seed=7))
    assert fingerprint(fresh) != fingerprint(model)
    checkpoints.load_weights(tmp_path, fresh)
    assert fingerprint(fresh) == fingerprint(model)
    fresh_optimizer = build_optimizer(fresh, 1e-3, 0.01)
    fresh_scheduler = build_scheduler(fresh_optimizer, 100, 0.1)
    epoch, step, restored = checkpoints.load_state(tmp_path, fresh_optimizer, fresh_scheduler)
    assert (epoch, step, restored) == (1, 1, history)
    assert fresh_scheduler.last_epoch == 1 and fresh_optimizer.state_dict()["state"]
    exported = checkpoints.export_model(tmp_path, tmp_path / "exported")
    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(exported)
    assert loaded.config.id2label == {0: "부정", 1: "긍정"}


def test_freeze_encoder_trains_only_the_head():
    model = build_model(TrainJob(model=ModelConfig(model="tiny", freeze_encoder=True),
                                 data=DataConfig(train="-", eval="-"), training=TrainingConfig(),
                                 cluster=ClusterConfig(output="-"), labels=["a", "b"]))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]


@pytest.mark.parametrize("metric, epoch", [("eval_macro_f1", 2), ("eval_loss", 3)])
def test_best_epoch_follows_the_metric(metric, epoch):
    history = [{"epoch": 1, "eval_macro_f1": 0.7, "eval_loss": 0.6},
               {"epoch": 2, "eval_macro_f1": 0.8, "eval_loss": 0.5},
               {"epoch": 3, "eval_macro_f1": 0.8, "eval_loss": 0.4}]
    assert best_entry(history, metric)["epoch"] == epoch


def test_loss_curve_averages_chunks_at_global_steps():
    from pipelines.train.loop import loss_curve

    assert loss_curve([1.0, 3.0, 2.0, 4.0], first_step=100, points=2) == [[102, 2.0], [104, 3.0]]
    assert len(loss_curve([0.5] * 1000, 0)) == 50
    assert loss_curve([], 0) == []
