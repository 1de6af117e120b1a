"""Steady-state labeling speed of each CPU path on one model: PyTorch fp32 and bf16-full (what `kobert label`
runs without an export) against ONNX Runtime fp32 and fused int8 and OpenVINO's static int8 (`kobert export
--format onnx|openvino`), and OpenVINO on the plain traced graph; with each path's label agreement and its
fraction of the CPU's measured matrix-multiply ceiling.

    PYTHONPATH=. .venv/bin/python bench/onnx_throughput.py --preset base --rows 3000 --threads 2

Steady state: the reviews are tokenized once; each path warms up on every 4th of them, then labels them
`--repeats` times timed (the best run counts: on a shared 2-core machine the slower runs measure the neighbours), in
length-sorted batches of `--batch-size`, through the same `predict_encoded` the labeling actors call, with
`--threads` intra-op threads. Not timed: process start, imports, model load, export. 3,000 reviews is the
end-to-end criterion's input (`label_throughput.py --parts compare`); fewer pad more (the longest row of each
length-sorted batch sets its width: 500 reviews padded 19% over their ids, 3,000 reviews 5%).

The model is the random-weight preset with `tests.onnx_models.decisive_classifier`'s head (`prepare_decisive`):
a fresh head gives every review one label, so agreement would read 100% whatever the path. On a random encoder
int8 noise flips more labels than on a trained model (the reviews differ little in `[CLS]`): the int8
agreement here is a floor, not the trained model's figure. Results go to bench/results/onnx_throughput.json
and .md, one section per CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from label_throughput import (OUT, RESULTS, cpu_key, describe, machine, prepare_decisive,  # noqa: E402
                              spread_reviews)


def prepare(preset: str, check_texts: list[str], threads: int) -> dict[str, Path]:
    """The decisive-head model, its fp32 and int8 exports, and (for OpenVINO) the traced graph before ONNX
    Runtime's fusions, plain and dynamically quantized (built once under bench/out/)."""
    from kobert_ops.model import load_classifier
    from kobert_ops.onnx_export import export_onnx, quantize_int8
    from kobert_ops.onnx_trace import trace
    from kobert_ops.openvino_export import export_openvino

    torch_dir = prepare_decisive(preset)
    folders = {"torch": torch_dir}
    for precision in ("fp32", "int8"):
        folder = OUT / "models" / f"{preset}-decisive-onnx-{precision}"
        if not (folder / "model.onnx").exists():
            # min_agreement 0: this bench reports agreement; the export's own floor is for real models
            export_onnx(torch_dir, folder, texts=check_texts, quantize=None if precision == "fp32" else "int8",
                        num_threads=threads, min_agreement=0)
        folders[precision] = folder
    folder = OUT / "models" / f"{preset}-decisive-openvino-int8"
    if not (folder / "model.xml").exists():  # calibrated on reviews other than the timed and the check's
        export_openvino(torch_dir, folder, texts=check_texts, calibration_texts=spread_reviews(300, offset=2),
                        quantize="int8", num_threads=threads, min_agreement=0)
    folders["openvino-int8"] = folder
    traced = OUT / "models" / f"{preset}-decisive-traced"
    if not (traced / "int8.onnx").exists():
        traced.mkdir(parents=True, exist_ok=True)
        model = load_classifier(torch_dir).eval()
        model.set_attn_implementation("eager")
        trace(model, traced / "fp32.onnx")
        quantize_int8(traced / "fp32.onnx", traced / "int8.onnx")
    folders["traced"] = traced
    return folders


def openvino_predictor(graph: Path, export: Path, precision: str | None, threads: int, batch_size: int):
    """The ONNX predictor of `export` (tokenizer, labels, batching) with OpenVINO running `graph` instead, in
    `precision` (f32, bf16, or None: OpenVINO's default), as `kobert_ops.openvino_predictor` runs an export."""
    from kobert_ops.onnx_predictor import OnnxPredictor
    from kobert_ops.openvino_predictor import CompiledSession

    predictor = OnnxPredictor(export, batch_size=batch_size, num_threads=threads)
    predictor.session = CompiledSession(graph, threads, precision)
    predictor.runs_in, predictor.passes = predictor.session.runs_in, predictor.session.streams
    predictor.logits = predictor.session.run_batches  # passes on OpenVINO's streams, as OpenVinoPredictor runs them
    return predictor


def cls_only(name: str, predictor, folders: dict[str, Path]) -> bool:
    """Whether the path runs the last layer for `[CLS]` only: the fused PyTorch forward does, and so do the
    graphs of `kobert_ops.onnx_trace` (the exports record it; the traced OpenVINO graphs come from it)."""
    if name.startswith("torch"):
        return predictor.fused is not None
    if name.startswith("onnx") or "kobert export" in name:
        folder = (folders["openvino-int8"] if "kobert export" in name else folders["int8" if "int8" in name else "fp32"])
        return json.loads((folder / "export.json").read_text()).get("graph") == "cls-only last layer"
    return True


def measure(predictor, input_ids, valid_length, repeats: int) -> tuple[float, object]:
    """Best reviews/s over `repeats` timed passes after a warm-up on every 4th review (all lengths, so the
    kernels of every batch shape are chosen before timing); and the predictions."""
    predictor.predict_encoded(input_ids[::4], valid_length[::4])
    best, predictions = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        predictions = predictor.predict_encoded(input_ids, valid_length)
        best = min(best, time.perf_counter() - start)
    return len(valid_length) / best, predictions


def run(preset: str, rows: int, threads: int, batch_size: int, repeats: int) -> dict:
    import numpy as np

    from kobert_ops.onnx_predictor import OnnxPredictor
    from kobert_ops.openvino_predictor import OpenVinoPredictor
    from kobert_ops.predictor import Predictor, bf16_is_fast

    texts = spread_reviews(rows + 300)
    check_texts, texts = texts[:300], texts[300:]
    folders = prepare(preset, check_texts, threads)
    bf16 = bf16_is_fast("cpu")  # emulated elsewhere: hundreds of times slower, not worth timing
    onnx = {precision: lambda p=precision: OnnxPredictor(folders[p], batch_size=batch_size, num_threads=threads)
            for precision in ("fp32", "int8")}
    paths = {"torch fp32": lambda: Predictor(folders["torch"], device="cpu", precision="fp32",
                                             batch_size=batch_size, num_threads=threads),
             "onnx fp32": onnx["fp32"], "onnx int8 (fused)": onnx["int8"],
             "openvino int8 (static, kobert export)": lambda: OpenVinoPredictor(folders["openvino-int8"],
                                                                                batch_size=batch_size,
                                                                                num_threads=threads)}
    if bf16:
        paths["torch bf16-full"] = lambda: Predictor(folders["torch"], device="cpu", precision="bf16-full",
                                                     batch_size=batch_size, num_threads=threads)
    for name, graph, precision in [("openvino fp32", "fp32.onnx", "f32"), ("openvino bf16", "fp32.onnx", "bf16"),
                                   ("openvino on the dynamic int8 graph", "int8.onnx", None)]:
        if precision != "bf16" or bf16:
            paths[name] = lambda g=graph, p=precision: openvino_predictor(folders["traced"] / g, folders["fp32"],
                                                                         p, threads, batch_size)
    results, reference = {}, None
    for name, build in paths.items():
        predictor = build()
        if reference is None:
            encoded = predictor.tokenizer.batch_encode(texts, max_length=128, padding="longest")
        speed, predictions = measure(predictor, encoded["input_ids"], encoded["valid_length"], repeats)
        reference = reference or predictions
        results[name] = {"reviews_per_s": round(speed, 1),
                         "label_agreement_vs_torch_fp32": round(float((predictions.label == reference.label).mean()), 4),
                         "max_probability_difference": round(float(np.abs(predictions.probabilities
                                                                          - reference.probabilities).max()), 5),
                         "fused_forward": getattr(predictor, "fused", None) is not None,
                         "runs_in": getattr(predictor, "runs_in", None),
                         "cls_only_last_layer": cls_only(name, predictor, folders)}
        print(name, results[name], flush=True)
        del predictor
    base = results["torch fp32"]["reviews_per_s"]
    for result in results.values():
        result["vs_torch_fp32"] = round(result["reviews_per_s"] / base, 2)
    valid = np.asarray(encoded["valid_length"])
    return {"preset": preset, "rows": len(texts), "threads": threads, "batch_size": batch_size, "repeats": repeats,
            "mean_tokens_per_review": round(float(valid.mean()), 1), "valid_lengths": valid.tolist(),
            "label_share_positive": round(float(reference.label.mean()), 3),
            "export_records": {precision: {key: json.loads((folders[precision] / "export.json").read_text()).get(key)
                                           for key in ("fusions", "graph")} for precision in ("fp32", "int8")},
            "paths": results}


CEILING_PRECISION = {"torch fp32": "fp32", "onnx fp32": "fp32", "onnx int8 (fused)": "int8", "openvino fp32": "fp32",
                     "openvino int8 (static, kobert export)": "int8"}


def with_ceiling(result: dict) -> dict:
    """Each path's executed work (`gemm_ceiling.base_ops_per_review` summed over the reviews' own lengths: the
    `[CLS]`-only last layer where the path runs one, padding not counted) against the measured ceiling of its
    precision on this CPU (`CEILING_PRECISION`; bf16 is not measured and its paths get no fraction)."""
    from gemm_ceiling import base_ops_per_review, ceilings

    lengths = result.pop("valid_lengths")
    if result["preset"] != "base":
        return result
    result["gemm_ceiling_gops"] = ceilings(result["threads"])
    for name, path in result["paths"].items():
        cls_only = path.pop("cls_only_last_layer")
        per_review = sum(base_ops_per_review(length, cls_only_last_layer=cls_only) for length in lengths) / len(lengths)
        path["ops_per_review_g"] = round(per_review / 1e9, 3)
        path["gops"] = round(path["reviews_per_s"] * per_review / 1e9, 1)
        precision = CEILING_PRECISION.get(name)
        if precision:
            ceiling = result["gemm_ceiling_gops"][precision]["gops"]
            path["fraction_of_ceiling"] = round(path["gops"] / ceiling, 3)
            path["ceiling_precision"] = precision
    return result


def section(result: dict) -> list[str]:
    lines = [f"## {describe(result['machine'])}", "",
             f"`{result['preset']}` preset (random encoder, decisive head), {result['rows']:,} real NSMC reviews "
             f"({result['mean_tokens_per_review']} tokens on average), length-sorted batches of "
             f"{result['batch_size']}, {result['threads']} threads, steady state (best of {result['repeats']} after a "
             f"warm-up). Measured {result['measured_at']}, load average at start "
             f"{result['machine']['load_average_at_start'][0]:.1f} (2 cores: above ~2.5 something else ran).", ""]
    ceiling = result.get("gemm_ceiling_gops")
    lines += ["| path | reviews/s | vs torch fp32 | labels equal to torch fp32 | max probability difference |"
              + (" GOP/s | of its precision's ceiling |" if ceiling else ""),
              "|---|---|---|---|---|" + ("---|---|" if ceiling else "")]
    for name, r in result["paths"].items():
        name = f"{name} (runs in {r['runs_in']})" if r.get("runs_in") else name
        row = (f"| {name} | {r['reviews_per_s']} | {r['vs_torch_fp32']}× | {r['label_agreement_vs_torch_fp32']:.2%} | "
               f"{r['max_probability_difference']} |")
        if ceiling:
            fraction = (f"{r['fraction_of_ceiling']:.0%} ({r['ceiling_precision']})" if "fraction_of_ceiling" in r
                        else "not measured")
            row += f" {r['gops']} | {fraction} |"
        lines.append(row)
    if ceiling:
        runtimes = ceiling["int8"].get("by_runtime")
        int8 = (f"int8 {ceiling['int8']['gops']} GOP/s, the better of ONNX Runtime's `MatMulInteger` "
                f"({runtimes['onnxruntime MatMulInteger']['gops']}) and OpenVINO's u8×s8 `FullyConnected` "
                f"({runtimes['openvino FullyConnected u8xs8']['gops']})" if runtimes
                else f"int8 `MatMulInteger` {ceiling['int8']['gops']} GOP/s")
        lines += ["", f"Ceiling measured in the same run (`bench/gemm_ceiling.py`, {result['threads']} threads, best "
                  f"shape): {int8}, fp32 `MatMul` on ONNX Runtime {ceiling['fp32']['gops']} GOP/s (by shape: int8 "
                  f"{ceiling['int8']['by_shape']}, fp32 {ceiling['fp32']['by_shape']}). A path's GOP/s is the work it executes: "
                  f"{next(iter(result['paths'].values()))['ops_per_review_g']} GOP per review (BERT-base's products "
                  "over each review's own ids, the last layer for `[CLS]` only as every path here runs it; padding, "
                  "softmax and norms not counted)."]
    return lines + [""]


def write_results(result: dict) -> None:
    """One section per CPU: a run replaces its own CPU's figures and keeps the others'."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "onnx_throughput.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    by_cpu = earlier.get("by_cpu") or ({cpu_key(earlier["machine"]): earlier} if "paths" in earlier else {})
    by_cpu[cpu_key(result["machine"])] = result
    path.write_text(json.dumps({"by_cpu": by_cpu}, indent=2, ensure_ascii=False) + "\n")
    lines = ["# CPU paths: PyTorch vs ONNX Runtime vs OpenVINO", "",
             "Written by `bench/onnx_throughput.py`; raw figures in `onnx_throughput.json`, one section per CPU "
             "(a speed holds for its CPU only). torch fp32 and bf16-full run `kobert_ops.fused_bert` (oneDNN's "
             "fused kernels) where oneDNN is present, as `kobert label` does; ONNX runs the graph `kobert export` "
             "wrote; `openvino int8 (static, kobert export)` runs the folder `kobert export --format openvino "
             "--quantize int8` wrote (NNCF's static int8, calibrated on 300 other reviews); the other OpenVINO rows run "
             "the traced graph before ONNX Runtime's fusions (OpenVINO reads no ONNX Runtime contrib operators). "
             "Agreement on a random encoder is a floor for int8 (see the "
             "script's docstring); the export's own check (`export.json`) is what a real model is judged by.", ""]
    for key in sorted(by_cpu):
        lines += section(by_cpu[key])
    (RESULTS / "onnx_throughput.md").write_text("\n".join(lines))
    print("\n".join(section(result)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base", choices=["tiny", "small", "base"])
    parser.add_argument("--rows", type=int, default=3000, help="real reviews timed")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every path")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per forward pass")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per path (the best counts)")
    args = parser.parse_args()
    where = machine()  # before the run: its load average says whether something else was running
    result = run(args.preset, args.rows, args.threads, args.batch_size, args.repeats)
    result.update(measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), machine=where)
    write_results(with_ceiling(result))


if __name__ == "__main__":
    main()
