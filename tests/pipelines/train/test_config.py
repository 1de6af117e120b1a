"""Train options: CLI flags → typed configs → the dict workers receive, and validation of bad values."""

import argparse

import pytest

from pipelines.train.command import add_arguments
from pipelines.train.config import ClusterConfig, DataConfig, ModelConfig, TrainingConfig, TrainJob
from pipelines.args import dataclass_from_args


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_round_trip_to_the_worker_dict():
    args = _parse(["--model", "tiny", "--train", "t.parquet", "--eval", "e.parquet", "--num-workers", "2",
                   "--epochs", "3", "--output", "out", "--freeze-encoder", "--labels", "부정,긍정",
                   "--schedule", "cosine", "--learning-rate", "2e-4"])
    job = TrainJob(model=dataclass_from_args(ModelConfig, args), data=dataclass_from_args(DataConfig, args),
                   training=dataclass_from_args(TrainingConfig, args), cluster=dataclass_from_args(ClusterConfig, args))
    again = TrainJob.from_dict(job.to_dict())
    assert again == job
    assert again.model.freeze_encoder and again.model.labels == ["부정", "긍정"]
    assert again.training.schedule == "cosine" and again.training.learning_rate == 2e-4
    assert again.cluster.num_workers == 2 and not again.cluster.resume


@pytest.mark.parametrize("values, message", [
    ({"epochs": 0}, "epochs"),
    ({"warmup_ratio": 1.0}, "warmup"),
    ({"learning_rate": -1.0}, "learning-rate"),
])
def test_bad_training_values_are_rejected(values, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**values)


def test_bad_cluster_and_data_values_are_rejected():
    with pytest.raises(ValueError, match="num-workers"):
        ClusterConfig(output="out", num_workers=0)
    with pytest.raises(ValueError, match="max-length"):
        DataConfig(train="t", eval="e", max_length=4)
