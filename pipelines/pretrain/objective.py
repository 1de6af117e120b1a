"""Pretraining's part of the shared loop: a masked-language model, masked batches, and an eval of
masked-token loss and accuracy summed over every rank's share of the held-out texts."""

from __future__ import annotations

import numpy as np

from pipelines.core.collectives import all_reduce_sum
from pipelines.core.objective import Objective
from pipelines.pretrain.config import PretrainJob
from pipelines.pretrain.data import masked_batches

METRIC = "eval_mlm_loss"


def build_mlm_model(job: PretrainJob):
    """A preset with fresh weights (same seed on every rank), or an existing encoder with an MLM head.

    BERT-family models train through `MaskedPositionsLM` (the vocabulary head on masked positions only);
    RoBERTa and ELECTRA use their stock `AutoModelForMaskedLM`. Either saves as a plain `*ForMaskedLM`.
    """
    import torch
    from transformers import AutoModelForMaskedLM

    from kobert_ops import hub
    from kobert_ops.masked_lm import MaskedPositionsLM
    from kobert_ops.model import PRESETS, bert_config, load_config

    if job.model.model in PRESETS:
        torch.manual_seed(job.training.seed)
        return MaskedPositionsLM(bert_config(job.model.model))
    directory = hub.resolve(job.model.model, allow_patterns=hub.MODEL_FILES)
    if load_config(directory).model_type == "bert":
        return MaskedPositionsLM.from_pretrained(directory)
    return AutoModelForMaskedLM.from_pretrained(directory)


class MaskedLM(Objective):
    """BERT's masked-language-model objective; checkpoints ranked by the lowest eval MLM loss."""

    name = "mlm"
    metric = METRIC
    order = "min"

    @classmethod
    def job_from_dict(cls, values: dict) -> PretrainJob:
        return PretrainJob.from_dict(values)

    def build_model(self, tokenizer):
        return build_mlm_model(self.job)

    def _batches(self, shard, tokenizer, seed: int | None):
        data, training = self.job.data, self.job.training
        return masked_batches(shard, tokenizer, data.text_column, training.batch_size, data.max_length,
                              data.bucket_batches, data.mask_probability, seed)

    def train_batches(self, shard, tokenizer, seed: int):
        return self._batches(shard, tokenizer, seed)

    def eval_batches(self, shard, tokenizer):
        return self._batches(shard, tokenizer, None)

    def batch_weight(self, batch: dict[str, np.ndarray]) -> float:
        return float((batch["labels"] != -100).sum())  # the loss is a mean over masked tokens

    def evaluate(self, module, batches, worker) -> tuple[dict, dict]:
        """Global masked-token cross-entropy and accuracy (the stock head, every position scored)."""
        import torch

        from pipelines.core.worker import to_device

        module.eval()
        totals = np.zeros(3, dtype=np.float64)  # loss sum, correct, masked tokens
        with torch.inference_mode(), worker.autocast:
            for batch in batches:
                tensors = to_device(batch, worker.device)
                logits = module(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits
                chosen = tensors["labels"] != -100
                logits, labels = logits[chosen].float(), tensors["labels"][chosen]
                totals += [float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum")),
                           float((logits.argmax(-1) == labels).sum()), float(chosen.sum())]
        loss_sum, correct, count = all_reduce_sum(totals, worker.world_size)
        return {"eval_mlm_loss": float(loss_sum / max(count, 1)), "eval_mlm_accuracy": float(correct / max(count, 1)),
                "eval_masked_tokens": int(count)}, {}

    def checkpoint_extra(self) -> dict:
        return {"model": self.job.model.model, "objective": "mlm"}
