"""Predict stage: a model actor that labels tokenized batches.

The model and tokenizer are loaded once, in the actor's `__init__` (Ray Data keeps a pool of these actors;
on GPU nodes each holds one GPU). Rows arrive in input order; `kobert_ops.predictor.Predictor` sorts them by
length so every forward pass pads only to its own longest row, and runs bf16 where the hardware is fast at it.
With `runtime="onnx"` (or a model folder holding `model.onnx`) the actor runs a `kobert export` folder on
ONNX Runtime instead (`kobert_ops.onnx_predictor.OnnxPredictor`: the same batching, one session per actor
with the actor's threads). Every row the actor passes on names who labeled it (`labeled_by`: node, actor,
CPUs, threads, and the path it ran: runtime, device, precision and why), so a run can show that each actor,
on each node, did a share, and which path labeled its rows on that machine.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

from pipelines.label.resources import reserved_threads, worker_identity
from pipelines.label.tokenize import TOKEN_IDS, padded
from pipelines.label.validate import accepted_mask

LABEL, LABEL_NAME, SCORE, PROBABILITIES = "label", "label_name", "score", "probabilities"
LABELED_BY = "labeled_by"  # dictionary<int32, string>: one JSON key per actor (resources.worker_identity)


class LabelPredictor:
    """Callable Ray Data UDF: `token_ids` in; `label`, `label_name`, `score`, `probabilities`, `labeled_by` out.

    Args:
        model: model directory or hub id.
        device: `auto`, `cpu` or `cuda`.
        precision: `fp32`; `bf16` (autocast: fp32 weights, matmuls in bf16); `bf16-full` (weights and
            activations in bf16, LayerNorm parameters fp32: ~1.5x faster than autocast on AMX CPUs, probabilities
            within ~0.005 of fp32); `int8` (CPU: dynamic int8 quantization of the linear layers);
            `auto`: `bf16-full` where bf16 is fast (AMX, CUDA), else `fp32`.
        forward_batch_size: rows per forward pass (0: the runtime's own, `kobert_ops.cpu_path.FORWARD_BATCH`).
        max_length: ids per row (only used to size the predictor; rows arrive already truncated).
        threads: torch (or ONNX Runtime) intra-op threads on CPU; 0: the CPUs Ray reserved for this actor,
            rounded down, at least 1 (every core outside Ray). Set explicitly, so the actor can report what it used.
        runtime: `torch`, `onnx`, `openvino` (an exported folder: CPU, the export's precision) or `auto` (the
            export a folder is; of the folder's own int8 exports, the one `kobert_ops.cpu_path` takes on this
            CPU: the fastest measured here where there is a choice, `kobert_ops.path_trial`; else torch).
    """

    def __init__(self, model: str, device: str = "auto", precision: str = "auto", forward_batch_size: int = 0,
                 max_length: int = 128, threads: int = 0, runtime: str = "auto") -> None:
        from kobert_ops.cpu_path import load_predictor

        threads = threads or reserved_threads()
        self.predictor, self.path = load_predictor(model, runtime, device, precision, forward_batch_size,
                                                   max_length, threads, auto_bf16="bf16-full")
        if self.path["runtime"] == "torch" and self.predictor.fused is None:  # the fused CPU forward does this
            _first_token_only_in_last_layer(self.predictor.model)
        self.labeled_by = pa.array([worker_identity(threads, self.path)], pa.string())
        self.pad_id = self.predictor.tokenizer.pad_token_id
        self.num_labels = len(self.predictor.labels)

    def __call__(self, batch: pa.Table) -> pa.Table:
        accepted = accepted_mask(batch)
        rows = np.flatnonzero(accepted)
        count = batch.num_rows
        label = np.full(count, -1, dtype=np.int64)
        score = np.full(count, np.nan, dtype=np.float32)
        probabilities = np.full((count, self.num_labels), np.nan, dtype=np.float32)
        names = np.full(count, None, dtype=object)
        if len(rows):
            input_ids, valid_length = padded(batch.column(TOKEN_IDS).take(pa.array(rows)), self.pad_id)
            result = self.predictor.predict_encoded(input_ids, valid_length)
            label[rows], score[rows], probabilities[rows] = result.label, result.score, result.probabilities
            names[rows] = result.label_name
        _release_freed_memory()
        flat = pa.array(probabilities.reshape(-1), type=pa.float32())
        labeled_by = pa.DictionaryArray.from_arrays(pa.array(np.zeros(count, dtype=np.int32)), self.labeled_by)
        return (batch.drop_columns([TOKEN_IDS])
                .append_column(LABEL, pa.array(label))
                .append_column(LABEL_NAME, pa.array(names, type=pa.string()))
                .append_column(SCORE, pa.array(score))
                .append_column(PROBABILITIES, pa.FixedSizeListArray.from_arrays(flat, self.num_labels))
                .append_column(LABELED_BY, labeled_by))


def _release_freed_memory() -> None:
    """Give freed heap back to the OS after each batch.

    Forward passes over batches of ever-different shapes leave glibc's heap fragmented: without this an
    actor's resident memory grew by ~10 MB per 4,096 rows (measured on NSMC), unbounded over a corpus.
    """
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


@lru_cache(maxsize=1)
def _libc():
    import ctypes

    return ctypes.CDLL("libc.so.6")


def _first_token_only_in_last_layer(model) -> None:
    """After the last layer's self-attention, carry on with `[CLS]` alone (BERT classifiers only).

    The classifier reads only `[CLS]` (pooler → linear), and everything after self-attention is per position,
    so the last layer's output projection and feed-forward (9 of its 12 weight units, ~6% of the model's
    matmul work) need not run for the other positions. `[CLS]`'s values are unchanged.
    """
    import torch

    layers = getattr(getattr(getattr(model, "bert", None), "encoder", None), "layer", None)
    # RoBERTa, ELECTRA and other heads are left alone: only BERT's pooler is known to read nothing but [CLS]
    if layers is None or not hasattr(layers[-1].attention, "output"):
        return

    class FirstTokenOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, hidden_states, input_tensor):  # (B, T, H) -> (B, 1, H)
            return self.inner(hidden_states[:, :1], input_tensor[:, :1])

    layers[-1].attention.output = FirstTokenOnly(layers[-1].attention.output)
