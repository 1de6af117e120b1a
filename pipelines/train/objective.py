"""Fine-tuning's part of the shared loop: a sequence classifier, length-bucketed labelled batches, and an
evaluation that sums one confusion matrix over every rank's share of the eval set."""

from __future__ import annotations

import numpy as np

from pipelines.core.collectives import all_reduce_sum
from pipelines.core.config import METRICS
from pipelines.core.objective import Objective
from pipelines.train.config import TrainJob
from pipelines.train.data import worker_batches


def build_model(job: TrainJob):
    """A preset with fresh weights (seeded identically on every rank), or a pretrained checkpoint.

    `--freeze-encoder` freezes the embeddings and the encoder layers; the pooler stays trainable with the
    classification head, because an encoder from MLM pretraining (`kobert pretrain`) has no trained pooler.
    """
    from kobert_ops.model import PRESETS, build_classifier, load_classifier

    if job.model.model in PRESETS:
        model = build_classifier(job.model.model, job.labels, seed=job.training.seed)
    else:
        model = load_classifier(job.model.model, labels=job.labels)
    if job.model.freeze_encoder:
        for name, parameter in model.base_model.named_parameters():
            parameter.requires_grad = name.startswith("pooler.")
    return model


def evaluate(model, batches, num_labels: int, autocast, device, world_size: int) -> tuple[np.ndarray, float]:
    """Global confusion matrix and mean loss over every rank's eval shard (no DDP: plain module)."""
    import torch

    from kobert_ops.metrics import confusion_matrix
    from pipelines.core.worker import to_device

    model.eval()
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    loss_sum = np.zeros(1, dtype=np.float64)
    with torch.inference_mode(), autocast:
        for batch in batches:
            tensors = to_device(batch, device)
            logits = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits.float()
            loss_sum += float(torch.nn.functional.cross_entropy(logits, tensors["labels"], reduction="sum"))
            matrix += confusion_matrix(batch["labels"], logits.argmax(-1).cpu().numpy(), num_labels)
    matrix = all_reduce_sum(matrix, world_size)
    loss_sum = all_reduce_sum(loss_sum, world_size)
    return matrix, float(loss_sum[0] / max(matrix.sum(), 1))


class Classification(Objective):
    """Sequence classification with cross-entropy; checkpoints ranked by `--metric`."""

    name = "classification"

    def __init__(self, job: TrainJob) -> None:
        super().__init__(job)
        self.metric = job.training.metric
        self.order = METRICS[self.metric]

    @classmethod
    def job_from_dict(cls, values: dict) -> TrainJob:
        return TrainJob.from_dict(values)

    def build_model(self, tokenizer):
        return build_model(self.job)

    def _batches(self, shard, tokenizer, batch_size: int, seed: int | None):
        data = self.job.data
        return worker_batches(shard, tokenizer, data.text_column, data.label_column, batch_size, data.max_length,
                              data.bucket_batches, seed)

    def train_batches(self, shard, tokenizer, seed: int):
        return self._batches(shard, tokenizer, self.job.training.batch_size, seed)

    def eval_batches(self, shard, tokenizer):
        return self._batches(shard, tokenizer, self.job.training.batch_size * 2, None)

    def evaluate(self, module, batches, worker) -> tuple[dict, dict]:
        from kobert_ops.metrics import metrics_from_confusion

        matrix, eval_loss = evaluate(module, batches, len(self.job.labels), worker.autocast, worker.device,
                                     worker.world_size)
        evaluation = metrics_from_confusion(matrix, self.job.labels)
        metrics = {"eval_loss": eval_loss, "eval_accuracy": evaluation["accuracy"],
                   "eval_macro_f1": evaluation["macro_f1"], "eval_n": evaluation["n"]}
        return metrics, {"eval": evaluation}

    def checkpoint_extra(self) -> dict:
        return {"model": self.job.model.model, "labels": self.job.labels}
