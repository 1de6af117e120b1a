"""Batch prediction with an OpenVINO export (`kobert export --format openvino`) on OpenVINO's CPU runtime: the
ONNX predictor's tokenizer, length-sorted batching, labels and softmax, with OpenVINO running the graph.

Why a second runtime: on an EPYC Zen 4 (AVX-512 VNNI and bf16) the statically quantized int8 graph that
`kobert_ops.openvino_export` writes labels the `base` preset's reviews about 1.3× faster than ONNX Runtime's
dynamic int8 graph, and keeps more of PyTorch fp32's labels (bench/results/onnx_throughput.md, docs/onnx.md):
its activations' scales are fixed at export, so no pass quantizes them at run time, and oneDNN's int8 kernels run
the products.

An int8 export runs the operators left outside int8 in bf16 on CPUs with native bf16 (OpenVINO's own default
there) and in f32 elsewhere; an fp32 export runs in f32 everywhere. `runs_in` says which, and the labeling path
and the export's check record it. One compiled model per predictor (per
labeling actor), with its inference threads set to the actor's CPUs, in OpenVINO's throughput mode: the threads
are split into streams that run different batches at once (on 2 threads, 2 streams of one thread each), rather than
every thread joining each operator of one batch. On the Zen 4 that labels the `base` preset's 3,000 reviews in
11.1 s of forward passes instead of 12.1 s, with the same logits to the bit (measured; the likely reason, not
profiled: a thread that runs a whole pass alone never waits for the other at the end of each operator).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from kobert_ops.export_kinds import EXPORT_GRAPHS
from kobert_ops.onnx_predictor import OnnxPredictor
from kobert_ops.paths import writable_cache_dir

GRAPH_FILE = EXPORT_GRAPHS["openvino"]  # OpenVINO's IR: the graph, beside its weights
WEIGHTS_FILE = "model.bin"
# Compiled models a node keeps (`compiled_cache`): about 100 MB each for the base preset's int8 graph; an hourly
# job alternating between this many models never compiles twice.
KEEP_COMPILED = 4


def compiled_cache() -> Path | None:
    """Where OpenVINO keeps compiled models between runs: `$KOBERT_CACHE/openvino` (default
    `~/.cache/kobert/openvino`, node-local like the model cache), or None where it cannot be created (a read-only
    home) or `KOBERT_OPENVINO_CACHE=off`."""
    if os.environ.get("KOBERT_OPENVINO_CACHE", "").lower() in ("off", "0", "false"):
        return None
    return writable_cache_dir("openvino")


def prune_compiled(cache: Path, keep: int = KEEP_COMPILED) -> None:
    """Delete all but the `keep` most recently written compiled models (`*.blob`, OpenVINO's) in `cache`.

    OpenVINO never deletes a blob, so a node labeling with a new export every week would keep them all. The newest
    by write time, not by use (OpenVINO reads a blob without touching it): a model whose blob went is compiled
    again, about a second, and is then the newest. Another actor of the node may be pruning at once, or reading
    a blob deleted here: an open file stays readable, and a blob found missing is compiled again."""
    blobs = []
    for blob in cache.glob("*.blob"):
        try:
            blobs.append((blob.stat().st_mtime, blob))
        except FileNotFoundError:  # pruned by another actor meanwhile
            continue
    for _, blob in sorted(blobs, reverse=True)[keep:]:
        blob.unlink(missing_ok=True)


class CompiledSession:
    """An OpenVINO compiled model and its queue of infer requests, one per stream.

    Compiling the base preset's int8 IR takes about 1.1 s on the Zen 4; with OpenVINO's model cache a later run
    (an hourly job's next one) loads the compiled model in about 0.2 s. The model is read first and compiled
    from memory, so OpenVINO keys the cache by the graph and weights themselves (with its version and this
    compile's settings): an export written again at the same path never gets the old compiled model. A compile
    that writes a blob prunes the folder to the newest `KEEP_COMPILED` (`prune_compiled`).
    """

    def __init__(self, graph: Path, num_threads: int | None, precision_hint: str | None = None,
                 cache: Path | None = None) -> None:
        import openvino as ov

        # OpenVINO splits the threads into streams itself (its throughput mode's rule for the CPU and graph)
        config = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = num_threads
        core = ov.Core()
        if cache is not None:
            core.set_property({"CACHE_DIR": str(cache)})
            before = set(cache.glob("*.blob"))
        self.compiled = core.compile_model(core.read_model(str(graph)), "CPU", config)
        if cache is not None and set(cache.glob("*.blob")) - before:  # compiled anew and written
            prune_compiled(cache)
        self.runs_in = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # f32 or bf16
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self.streams = int(self.compiled.get_property("NUM_STREAMS"))
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self._finished: list[tuple[object, np.ndarray]] = []
        self.queue = ov.AsyncInferQueue(self.compiled, self.streams)
        self.queue.set_callback(self._keep)

    def _keep(self, request, key) -> None:
        # runs on OpenVINO's thread when a pass ends: only a copy of the logits (the request is reused)
        self._finished.append((key, request.get_output_tensor(0).data.copy()))

    def run_batches(self, batches: Iterable[tuple[object, dict[str, np.ndarray]]]) -> list[tuple[object, np.ndarray]]:
        """(key, logits) of each (key, feeds) pass, in the order they finished. Up to one pass per stream is in
        flight: `start_async` waits for a free request, and copies the feeds into it (OpenVINO's default).

        Raises:
            RuntimeError: OpenVINO's, when a pass fails (from the pass's start or from `wait_all`).
        """
        self._finished = []
        try:
            for key, feeds in batches:
                self.queue.start_async(feeds, key)
        finally:
            self.queue.wait_all()
        finished, self._finished = self._finished, []
        return finished


class OpenVinoPredictor(OnnxPredictor):
    """Loads an OpenVINO export and its tokenizer once; predicts batches of texts or encoded rows (the arguments
    are `OnnxPredictor`'s; `num_threads` sets OpenVINO's inference threads)."""

    runtime = "openvino"
    # the float precision around an int8 graph's products: OpenVINO's own choice (bf16 where the CPU has bf16
    # units), or f32 (`kobert_ops.avx2_check`'s child runs as on a CPU without them)
    float_hint: str | None = None

    def open_session(self, directory: Path, num_threads: int | None):
        # an fp32 export computes in f32 everywhere (what its check holds it to); int8 keeps OpenVINO's default
        session = CompiledSession(directory / GRAPH_FILE, num_threads,
                                  "f32" if self.precision == "fp32" else self.float_hint,
                                  cache=compiled_cache())
        self.runs_in = session.runs_in
        self.passes = session.streams
        return session, {name: np.int64 for name in session.input_names}

    def logits(self, batches):
        """(rows, logits) of each pass, passes running on OpenVINO's streams at once (see the module's note)."""
        return self.session.run_batches(batches)
