"""Batch prediction with an exported ONNX classifier (`kobert export --format onnx`) on ONNX Runtime's CPU
provider: the same call contract as `kobert_ops.predictor.Predictor`, so the labeling actors use either.

Rows are sorted by length so each `session.run` pads only to its own longest row, as the torch predictor
does; softmax runs in fp32 numpy on the logits. One `InferenceSession` per predictor (per labeling actor),
its intra-op threads set to the CPUs the actor holds: ONNX Runtime's own thread pool otherwise takes every
core of the machine, and several actors on one node would oversubscribe it.

With several threads the passes run side by side, one thread each (up to `MAX_PASSES` at once; beyond that the
threads are shared out among them), as OpenVINO's streams do (`kobert_ops.openvino_predictor`). On the EPYC Zen 4
(2 threads, the `base` preset's int8 export, 3,000 reviews, passes of 64) that is 13.55 s of forward passes
instead of 14.6 s, with the same logits to the bit (dynamic int8's scales are per pass, not per thread count).

Precision is the export's (`fp32`, or `int8` when exported with `--quantize int8`): it is fixed in the
graph, read from the folder's `export.json`.
"""

from __future__ import annotations

import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable, Sequence

import numpy as np

from kobert_ops import hub
from kobert_ops.export_kinds import EXPORT_GRAPHS, RUNTIME_NAMES
from kobert_ops.model import check_vocabulary
from kobert_ops.predictor import PASS_COST_IDS, Predictions, length_batches
from kobert_ops.tokenizer import load_tokenizer

MODEL_FILE = EXPORT_GRAPHS["onnx"]
EXPORT_FILE = "export.json"
RUNTIMES = ("auto", "torch", *EXPORT_GRAPHS)
# Passes run at once at most: each holds its own activations (up to ~100 MB for 64 rows of 128 ids in the base
# preset), so a 32-thread actor runs 4 passes of 8 threads rather than 32 of one.
MAX_PASSES = 4


def pass_split(num_threads: int | None) -> tuple[int, int]:
    """(passes at once, threads per pass) for `num_threads` threads (default: every core)."""
    threads = max(1, num_threads or os.cpu_count() or 1)
    per_pass = -(-threads // MAX_PASSES)  # one thread each up to MAX_PASSES threads, then as few as fit
    return threads // per_pass, per_pass


def folder_runtime(directory: str | os.PathLike) -> str:
    """The runtime a model folder is for: `onnx` (`model.onnx`), `openvino` (`model.xml`), else `torch`."""
    for runtime, graph in EXPORT_GRAPHS.items():
        if (Path(directory) / graph).is_file():
            return runtime
    return "torch"


def check_runtime(model: str | os.PathLike, runtime: str, resolve: bool = False) -> str:
    """`torch`, `onnx` or `openvino` for `model`: `auto` is what the folder holds (`model.onnx`: onnx,
    `model.xml`: openvino, else torch). A runtime that does not fit the folder is refused. Only a local folder is
    looked at unless `resolve` (a URI or hub id is fetched then): a run's options are checked before any download.

    Raises:
        ValueError: an unknown runtime, or one that does not fit the folder (one line).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    directory = Path(model).expanduser()
    if resolve and not directory.is_dir():
        directory = hub.resolve(model, allow_patterns=hub.MODEL_FILES)
    if not directory.is_dir():
        return runtime
    kind = folder_runtime(directory)
    if runtime in ("auto", kind):
        return kind
    if kind != "torch":
        raise ValueError(f"{model} is an {RUNTIME_NAMES[kind]} export ({EXPORT_GRAPHS[kind]}): label it with "
                         f"--runtime {kind}")
    raise ValueError(f"{model} holds no {EXPORT_GRAPHS[runtime]}: --runtime {runtime} needs a folder written by "
                     f"`kobert export --format {runtime} --model {model} --output FOLDER`")


def export_config(directory: Path) -> SimpleNamespace:
    """What the predictor needs of an export's `config.json` (vocabulary size, model type, label names in id
    order), read as JSON: transformers' `AutoConfig` would import torch and transformers, seconds of a scheduled
    job's start-up that an ONNX Runtime run has no other use for."""
    config = json.loads((directory / "config.json").read_text())
    id2label = config.get("id2label") or {}
    return SimpleNamespace(vocab_size=int(config["vocab_size"]), model_type=config.get("model_type", "?"),
                           labels=[id2label[key] for key in sorted(id2label, key=int)])


def session_options(num_threads: int | None):
    """ONNX Runtime session options: `num_threads` intra-op threads, no inter-op pool (one graph at a time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in fp32 (shifted by the row maximum, so large logits do not overflow)."""
    shifted = logits.astype(np.float32) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class OnnxPredictor:
    """Loads an exported ONNX classifier and its tokenizer once; predicts batches of texts or encoded rows.

    Args:
        model: exported ONNX folder (local, URI or hub id), as `kobert export` writes it.
        batch_size: rows per `session.run`.
        max_length: ids per row, special tokens included; longer texts are truncated.
        sort_by_length: group rows of similar length into one run (results keep input order).
        num_threads: ONNX Runtime intra-op threads (default: ONNX Runtime's choice, every core).
        tokenizer: tokenizer folder or hub id, if not the export's own copy.
    """

    runtime = "onnx"  # the export it runs (`EXPORT_GRAPHS`)
    device = "cpu"
    fused = None  # the torch predictor's fused-forward slot: the graph's own fusions happen at export

    def __init__(self, model: str | os.PathLike, batch_size: int = 64, max_length: int = 128,
                 sort_by_length: bool = True, num_threads: int | None = None,
                 tokenizer: str | os.PathLike | None = None) -> None:
        directory = hub.resolve(model, allow_patterns=hub.MODEL_FILES)
        self.check_folder(model, directory)
        self.batch_size = batch_size
        self.max_length = max_length
        self.sort_by_length = sort_by_length
        self.num_threads = num_threads
        self.tokenizer = load_tokenizer(tokenizer or directory)
        config = export_config(directory)
        check_vocabulary(config, self.tokenizer, str(model), str(tokenizer or model))
        self.labels = config.labels
        export_path = directory / EXPORT_FILE
        export = json.loads(export_path.read_text()) if export_path.exists() else {}
        self.precision = export.get("precision", "fp32")
        self._pool: ThreadPoolExecutor | None = None
        self.session, self._input_types = self.open_session(directory, num_threads)
        self._label_names = np.array(self.labels, dtype=object)

    def open_session(self, directory: Path, num_threads: int | None):
        """The runtime's session over the folder's graph (anything with ONNX Runtime's `run(names, feeds)`), and
        the integer type of each graph input; sets `passes`, how many passes run at once."""
        import onnxruntime as ort

        self.passes, threads_per_pass = pass_split(num_threads)
        session = ort.InferenceSession(str(directory / MODEL_FILE), session_options(threads_per_pass),
                                       providers=["CPUExecutionProvider"])
        return session, {node.name: np.int32 if node.type == "tensor(int32)" else np.int64
                         for node in session.get_inputs()}

    def check_folder(self, model: str | os.PathLike, directory: Path) -> None:
        """Refuse a folder that is no export of this predictor's runtime (`runtime`)."""
        graph = EXPORT_GRAPHS[self.runtime]
        if not (directory / graph).is_file():
            raise FileNotFoundError(f"{model} holds no {graph}: --runtime {self.runtime} needs a folder written by "
                                    f"`kobert export --format {self.runtime}`")

    def predict(self, texts: Sequence[str]) -> Predictions:
        """Label raw texts (callers reject null/empty texts before this)."""
        encoded = self.tokenizer.batch_encode(texts, max_length=self.max_length, padding="longest")
        return self.predict_encoded(encoded["input_ids"], encoded["valid_length"])

    def predict_encoded(self, input_ids: np.ndarray, valid_length: np.ndarray) -> Predictions:
        """Label rows already encoded by the tokenizer's `batch_encode` (any padding width).

        Only `input_ids` and the attention mask are graph inputs: token types are zeros, as every row is one
        segment (the export traced the model's default).
        """
        valid_length = np.asarray(valid_length, dtype=np.int64)
        probabilities = np.empty((len(valid_length), len(self.labels)), dtype=np.float32)
        batches = ((rows, self.feeds(input_ids, valid_length, rows, width))
                   for rows, width in length_batches(valid_length, self.batch_size, self.sort_by_length,
                                                     PASS_COST_IDS))
        for rows, logits in self.logits(batches):
            probabilities[rows] = softmax(logits)
        return Predictions.of(probabilities, self._label_names)

    def feeds(self, input_ids: np.ndarray, valid_length: np.ndarray, rows: np.ndarray,
              width: int) -> dict[str, np.ndarray]:
        """The graph inputs for one pass over `rows`, padded to `width` ids."""
        ids = np.ascontiguousarray(input_ids[rows, :width])
        mask = np.arange(width)[None, :] < valid_length[rows][:, None]  # (B, T)
        return {name: value.astype(self._input_types[name], copy=False)
                for name, value in (("input_ids", ids), ("attention_mask", mask))}

    def logits(self, batches: Iterable[tuple[np.ndarray, dict[str, np.ndarray]]]):
        """(rows, logits) of each (rows, feeds) pass, in order, up to `passes` of them running at once
        (`session.run` is thread-safe and lets go of the GIL)."""
        if self.passes == 1:
            for rows, feeds in batches:
                yield rows, self.session.run(["logits"], feeds)[0]
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.passes, thread_name_prefix="onnx-pass")
        pending: deque = deque()
        for rows, feeds in batches:
            pending.append((rows, self._pool.submit(self.session.run, ["logits"], feeds)))
            if len(pending) > self.passes:  # one waiting beyond those running: bounded memory
                done_rows, future = pending.popleft()
                yield done_rows, future.result()[0]
        while pending:
            done_rows, future = pending.popleft()
            yield done_rows, future.result()[0]
