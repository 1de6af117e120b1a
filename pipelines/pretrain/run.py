"""MLM pretraining on Ray Train, as Python callers (the recipe) and `kobert pretrain` run it.

    from pipelines.pretrain.run import pretrain
    summary = pretrain(PretrainJob(...))   # exports the lowest-eval-loss checkpoint into job.cluster.output
"""

from __future__ import annotations

from pipelines.core.driver import export_best, fault_after_epoch, fit, ray_session, resolve_cluster
from pipelines.core.models import check_vocabulary, default_learning_rate, local_folder, pinned, resolve_tokenizer
from pipelines.core.storage import absolute, require_data, staged_output
from pipelines.pretrain.config import SCRATCH_LEARNING_RATE, PretrainJob
from pipelines.pretrain.objective import METRIC


def resolve_job(job: PretrainJob) -> None:
    """Driver-side defaults: absolute paths, run name, tokenizer, learning rate, fault hook."""
    require_data("--data", job.data.data)
    require_data("--exclude", job.data.exclude)
    resolve_cluster(job.cluster)
    job.data.data = absolute(job.data.data)
    if job.data.exclude:
        job.data.exclude = absolute(job.data.exclude)
    job.model.model = pinned(job.model.model)
    job.tokenizer_dir = resolve_tokenizer(job.model.model, job.model.tokenizer)
    check_vocabulary(job.model.model, job.tokenizer_dir)
    if job.training.learning_rate is None:
        job.training.learning_rate = default_learning_rate(job.model.model, scratch=SCRATCH_LEARNING_RATE)
    job.training.metric = METRIC  # checkpoints are ranked by MLM loss, whatever --metric said
    job.fault_after_epoch = fault_after_epoch()


def node_paths(job: PretrainJob) -> dict[str, str | None]:
    """The paths every node reads or writes (refused when node-local on a multi-node cluster)."""
    return {"--output": job.cluster.output, "--storage-path": job.cluster.storage_path, "--data": job.data.data,
            "--model": local_folder(job.model.model), "--tokenizer": local_folder(job.tokenizer_dir)}


def excluded_texts(job: PretrainJob) -> frozenset[str]:
    if not job.data.exclude:
        return frozenset()
    import pyarrow.parquet as pq

    table = pq.read_table(job.data.exclude, columns=[job.data.text_column])
    return frozenset(text for text in table[job.data.text_column].to_pylist() if text)


def pretrain(job: PretrainJob) -> dict:
    """Run MLM pretraining; export the checkpoint with the lowest eval MLM loss into OUTPUT."""
    from pipelines.core.data import shuffled
    from pipelines.pretrain.data import read_texts, split
    from pipelines.pretrain.objective import MaskedLM
    from pipelines.pretrain.report import finish

    resolve_job(job)
    with ray_session(job.cluster, node_paths(job)):
        texts = read_texts(job.data.data, job.data.text_column, job.data.limit)
        train_set, eval_set = split(texts, job.data.text_column, job.data.eval_per_mille, excluded_texts(job))
        train_set, eval_set = train_set.materialize(), eval_set.materialize()
        job.train_rows = train_set.count()
        datasets = {"train": shuffled(train_set, job.training.shuffle), "eval": eval_set}
        result = fit(MaskedLM, job, datasets, what="pretraining")
        with staged_output(job.cluster.output) as directory:
            best, history = export_best(result, MaskedLM, directory)
            return finish(best, history, job, directory, eval_rows=eval_set.count())
