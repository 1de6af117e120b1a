"""Batch prediction with a classifier (KoBERT, or any BERT/RoBERTa/ELECTRA encoder): texts (or encoded rows)
in, label ids, names and scores out.

Speed comes from four things, all numerically harmless for the chosen label in practice:
rows are sorted by length so each forward pass pads only to its own longest row (reviews are short and
uneven: input order wastes most of the compute on `[PAD]`), the forward pass runs in bf16 where the hardware
has bf16 matrix units (CUDA, or AMX/AVX-512-bf16 CPUs), on such CPUs BERT runs through oneDNN's fused kernels
(`kobert_ops.fused_bert`), and softmax is computed in fp32.

CPUs without bf16 units (AVX2 laptops and servers: most of them) gain nothing from bf16: their bf16 matmuls
are emulated and hundreds of times slower than fp32. There `int8` (dynamic quantization of every linear
layer: int8 weights, activations quantized per batch) runs the forward pass 1.4x (small preset) to 1.9x (base)
faster than fp32, measured on a 2-core AVX2 EPYC.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kobert_ops.model import check_vocabulary, labels_of, load_classifier, load_config
from kobert_ops.tokenizer import load_tokenizer


def resolve_device(device: str = "auto") -> str:
    """`auto` → `cuda` when a GPU is visible, else `cpu`."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA GPU")
    return device


def bf16_is_fast(device: str) -> bool:
    """True where bf16 matmuls run on dedicated units: CUDA GPUs of compute capability 8+, or CPUs with AMX or
    AVX-512-bf16. (`torch.cuda.is_bf16_supported()` alone says True on a T4 or V100, which only emulate it.)"""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


PRECISIONS = ("auto", "fp32", "bf16", "bf16-full", "int8")


def precision_reason(requested: str, device: str, resolved: str) -> str:
    """Why `resolved` runs on `device`, in words for the run summary and the manifest."""
    if requested != "auto":
        return f"--precision {requested}"
    import torch

    if device.startswith("cuda"):
        return "auto: this GPU has bf16 units" if resolved != "fp32" else "auto: this GPU only emulates bf16"
    if torch.cpu._is_amx_tile_supported():
        return "auto: this CPU has AMX (bf16 tiles)"
    if torch.cpu._is_avx512_bf16_supported():
        return "auto: this CPU has AVX-512 bf16"
    return "auto: this CPU has no bf16 units (neither AMX nor AVX-512 bf16), fp32 is PyTorch's fastest exact path"


def resolve_precision(precision: str, device: str, auto_bf16: str = "bf16") -> str:
    """`auto` → `auto_bf16` (`bf16` or `bf16-full`) where bf16 is fast on `device`, else `fp32`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return auto_bf16 if bf16_is_fast(device) else "fp32"
    if precision == "int8" and not device.startswith("cpu"):
        raise ValueError("precision int8 (dynamic quantization) runs on CPU only; use bf16-full on GPUs")
    return precision


def cast_to_bf16(model) -> None:
    """Cast a model's weights to bf16 for good (no per-op casts under autocast), keeping LayerNorm in fp32.

    On AMX CPUs this runs ~1.5x faster than autocast, whose every matmul re-casts fp32 weights; probabilities
    stay within ~0.005 of fp32. LayerNorm keeps fp32 parameters (and computes in fp32) for its statistics.
    """
    import torch

    model.to(torch.bfloat16)
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.float()


def quantize_int8(model):
    """Dynamic int8 quantization of every `nn.Linear` (weights int8 per tensor, activations per batch).

    PyTorch's own `quantize_dynamic` (fbgemm/x86 kernels: AVX2, AVX-512 VNNI or AMX-int8, whichever the CPU
    has). On the `base` preset over real reviews it ran ~1.9x faster than fp32 on an AVX2 CPU; on the NSMC
    recipe's trained model 99.9% of test labels equal fp32's, probabilities within 0.02
    (`bench/precision_agreement.py`). torch marks
    `torch.ao.quantization` deprecated in favour of torchao, whose CPU int8 path needs torch.compile; torch is
    pinned, and the API is still there in it.
    """
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@dataclass
class Predictions:
    """Per-row results, in input order."""

    label: np.ndarray  # int64 (N,)
    label_name: list[str]
    score: np.ndarray  # float32 (N,): probability of the chosen label
    probabilities: np.ndarray  # float32 (N, num_labels)

    def __len__(self) -> int:
        return len(self.label)

    @classmethod
    def of(cls, probabilities: np.ndarray, label_names: np.ndarray) -> "Predictions":
        """The argmax label, its name and probability for each row of `probabilities` (N, num_labels)."""
        label = probabilities.argmax(axis=1).astype(np.int64)
        return cls(label=label, label_name=label_names[label].tolist(),
                   score=probabilities[np.arange(len(label)), label], probabilities=probabilities)


# One more forward pass costs about as much as this many more ids in a pass: OpenVINO's int8 base preset on the
# EPYC Zen 4 spends ~8 ms per pass and ~0.4 ms per id (one thread; 1x8 to 256x16 ids, 2026-12-07).
PASS_COST_IDS = 20


def length_batches(valid_length: np.ndarray, batch_size: int, sort_by_length: bool, pass_cost_ids: int = 0):
    """(rows, width) per forward pass, at most `batch_size` rows each, padded to its own longest row; shared
    by the PyTorch, ONNX Runtime and OpenVINO predictors.

    Rows are sorted by length (stable) when asked. With `pass_cost_ids` a pass is also closed early where taking
    the next, longer rows would pad the rows it holds by more ids than a pass costs (`PASS_COST_IDS`): 3,000
    reviews padded to 51,184 ids in 38 passes instead of 53,552 in 24 passes of 128, 4.4% fewer ids through the
    model. Large inputs change little: there most passes are full ones of a single length anyway.
    """
    count = len(valid_length)
    order = np.argsort(valid_length, kind="stable") if sort_by_length else np.arange(count)
    if not (sort_by_length and pass_cost_ids):
        for start in range(0, count, batch_size):
            rows = order[start : start + batch_size]
            yield rows, int(valid_length[rows].max())
        return
    lengths, counts = np.unique(valid_length[order], return_counts=True)
    start = end = width = 0  # the pass being filled: order[start:end], padded to width
    for length, left in zip(lengths.tolist(), counts.tolist()):
        while left:
            if end > start and (end - start) * (length - width) > pass_cost_ids:
                yield order[start:end], width
                start = end
            taken = min(left, batch_size - (end - start))
            end, left, width = end + taken, left - taken, length
            if end - start == batch_size:
                yield order[start:end], width
                start = end
    if end > start:
        yield order[start:end], width


class Predictor:
    """Loads a classifier and its tokenizer once; predicts batches of texts or encoded rows.

    Args:
        model: model directory or hub id (its tokenizer files are read from the same place unless given).
        device: `auto`, `cpu`, `cuda` or `cuda:N`.
        precision: `fp32`; `bf16` (autocast: fp32 weights, matmuls in bf16); `bf16-full` (weights and
            activations in bf16, see `cast_to_bf16`); `int8` (CPU: `quantize_int8`); `auto`: `auto_bf16`
            where bf16 is fast, else `fp32`.
        batch_size: rows per forward pass.
        max_length: ids per row, the model's special tokens (`[CLS]`, `[SEP]`) included; longer texts are truncated.
        sort_by_length: group rows of similar length into a forward pass (results keep input order).
        tokenizer: tokenizer directory or hub id, if not the model's own (checked against its vocabulary).
        num_threads: torch intra-op threads on CPU (default: torch's choice).
        auto_bf16: what `auto` means where bf16 is fast: `bf16` (autocast, the conservative default) or
            `bf16-full` (bulk labeling, where the speed matters more than the last 0.005 of a probability).
        fused: on CPUs with bf16 units (AMX/AVX-512-bf16) and oneDNN, in `fp32` or `bf16-full`, run BERT
            classifiers (RoBERTa, ELECTRA and others keep the stock forward: `fused_bert.supports`) through
            `kobert_ops.fused_bert` (fused bias/GELU matmuls; 1.4x faster on the base preset there). On AVX2-only
            CPUs oneDNN has no bf16 inner product at all, and its fused fp32 kernels ran ~7% slower than the stock
            forward, so those keep the stock forward.
    """

    def __init__(
        self,
        model: str | os.PathLike,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int = 64,
        max_length: int = 128,
        sort_by_length: bool = True,
        tokenizer: str | os.PathLike | None = None,
        num_threads: int | None = None,
        auto_bf16: str = "bf16",
        fused: bool = True,
    ) -> None:
        import torch

        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device, auto_bf16)
        self.reason = precision_reason(precision, self.device, self.precision)
        self.batch_size = batch_size
        self.max_length = max_length
        self.sort_by_length = sort_by_length
        self.tokenizer = load_tokenizer(tokenizer or model)
        check_vocabulary(load_config(model), self.tokenizer, str(model), str(tokenizer or model))
        self.model = load_classifier(model).to(self.device).eval()
        self.labels = labels_of(self.model)
        if self.precision == "bf16-full":
            cast_to_bf16(self.model)
        elif self.precision == "int8":
            self.model = quantize_int8(self.model)
        self.fused = None
        if fused and self.device == "cpu" and self.precision in ("fp32", "bf16-full") and bf16_is_fast("cpu"):
            from kobert_ops import fused_bert

            if fused_bert.fused_kernels_available() and fused_bert.supports(self.model):
                self.fused = fused_bert.FusedBertClassifier(self.model)
        self._label_names = np.array(self.labels, dtype=object)

    def predict(self, texts: Sequence[str]) -> Predictions:
        """Label raw texts (callers reject null/empty texts before this)."""
        encoded = self.tokenizer.batch_encode(texts, max_length=self.max_length, padding="longest")
        return self.predict_encoded(encoded["input_ids"], encoded["valid_length"])

    def predict_encoded(self, input_ids: np.ndarray, valid_length: np.ndarray) -> Predictions:
        """Label rows already encoded by the tokenizer's `batch_encode` (any padding width).

        Only `input_ids` and the attention mask reach the model: token types stay the model's default (zeros),
        as every row is one segment.
        """
        import torch

        valid_length = np.asarray(valid_length, dtype=np.int64)
        probabilities = np.empty((len(valid_length), len(self.labels)), dtype=np.float32)
        autocast = torch.autocast(
            device_type="cuda" if self.device.startswith("cuda") else "cpu",
            dtype=torch.bfloat16,
            enabled=self.precision == "bf16",
        )
        with torch.inference_mode(), autocast:
            # on a GPU a pass costs far more ids than on a CPU core: there passes are cut by size alone
            pass_cost = PASS_COST_IDS if self.device == "cpu" else 0
            for rows, width in length_batches(valid_length, self.batch_size, self.sort_by_length, pass_cost):
                ids = torch.from_numpy(np.ascontiguousarray(input_ids[rows, :width])).to(self.device)
                lengths = torch.from_numpy(valid_length[rows]).to(self.device)
                mask = (torch.arange(width, device=self.device)[None, :] < lengths[:, None]).long()
                if self.fused is not None:
                    logits = self.fused(ids, mask)
                else:
                    logits = self.model(input_ids=ids, attention_mask=mask).logits
                probabilities[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return Predictions.of(probabilities, self._label_names)
