"""Fine-tuning on Ray Train, as Python callers (the recipe, the demo) and `kobert train` run it.

    from pipelines.train.run import train
    summary = train(TrainJob(...))      # exports the best epoch's model into job.cluster.output
"""

from __future__ import annotations

from pipelines.core.driver import ray_session, fault_after_epoch, fit, export_best, resolve_cluster
from pipelines.core.models import (check_vocabulary, default_learning_rate, is_preset, local_folder, pinned,
                                   resolve_tokenizer)
from pipelines.core.storage import absolute, require_data, staged_output
from pipelines.train.config import TrainJob


def resolve_labels(job: TrainJob) -> list[str]:
    """--labels, else labels.json beside the training data, else the model's own, else the data's."""
    from pipelines.core.models import model_config
    from pipelines.train.data import labels_beside, labels_from_data

    if job.model.labels:
        return list(job.model.labels)
    labels = labels_beside(job.data.train)
    if labels:
        return labels
    if not is_preset(job.model.model):
        config = model_config(job.model.model)
        if any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
            return [config.id2label[i] for i in sorted(config.id2label)]
    return labels_from_data(job.data.train, job.data.label_column)


def resolve_job(job: TrainJob) -> None:
    """Driver-side defaults: absolute paths, run name, tokenizer, learning rate by model, fault hook."""
    require_data("--train", job.data.train)
    require_data("--eval", job.data.eval)
    resolve_cluster(job.cluster)
    job.data.train, job.data.eval = absolute(job.data.train), absolute(job.data.eval)
    job.model.model = pinned(job.model.model)
    job.tokenizer_dir = resolve_tokenizer(job.model.model, job.model.tokenizer)
    check_vocabulary(job.model.model, job.tokenizer_dir)
    if job.training.learning_rate is None:
        job.training.learning_rate = default_learning_rate(job.model.model)
    job.fault_after_epoch = fault_after_epoch()


def node_paths(job: TrainJob) -> dict[str, str | None]:
    """The paths every node reads or writes (refused when node-local on a multi-node cluster)."""
    return {"--output": job.cluster.output, "--storage-path": job.cluster.storage_path, "--train": job.data.train,
            "--eval": job.data.eval, "--model": local_folder(job.model.model),
            "--tokenizer": local_folder(job.tokenizer_dir)}


def train(job: TrainJob) -> dict:
    """Run the whole job on Ray; export the best epoch's model and write metrics and report."""
    from pipelines.core.data import shuffled
    from pipelines.train.data import count_rows, read_dataset
    from pipelines.train.objective import Classification
    from pipelines.train.report import finish

    resolve_job(job)
    with ray_session(job.cluster, node_paths(job)):
        columns = [job.data.text_column, job.data.label_column]
        train_set = read_dataset(job.data.train, columns)
        job.labels = resolve_labels(job)
        job.train_rows = count_rows(job.data.train, train_set)
        datasets = {"train": shuffled(train_set, job.training.shuffle), "eval": read_dataset(job.data.eval, columns)}
        result = fit(Classification, job, datasets)
        with staged_output(job.cluster.output) as directory:
            best, history = export_best(result, Classification, directory)
            return finish(best, history, job, directory)
