"""What a GPU must show, measured in one call of a lent GPU machine (issue 14): `bench/gpu.sh` runs this there.

    bash bench/gpu_prepare.sh                      # here, once: wheels and data into .device-carry/ (git-ignored)
    # device tool: run(command="bash bench/gpu.sh", carry=[".device-carry"], timeout_s=600)
    bash bench/gpu.sh --smoke                      # here: the same parts on the CPU with a tiny model, in minutes

Parts, each timed from process start to exit and each kept when another fails (its error is recorded in one line):

- `label_local`: `kobert label --device cuda --engine local` of the `base` preset over `--rows` reviews (1M by
  default), Parquet to Parquet: the reviews of the carried sample repeated under new ids, so every row is labeled.
- `label_ray`: the same through Ray Data with one GPU actor (`--engine ray`), where Ray imports.
- `train`: `kobert train --use-gpu --precision bf16` of the `base` preset on `--train-rows` reviews, one epoch.
- `onnxruntime_cuda`: whether the machine's ONNX Runtime has its CUDA provider (the image's wheel is the CPU build:
  then this records that it was not measured, and why).

Figures go to bench/results/gpu.json and gpu.md, one section per GPU model. `--smoke` runs the same parts on the
CPU with the `tiny` preset and small inputs, to show the script works without a GPU; its figures go to
`--work`/gpu-smoke.json only, never to bench/results (a CPU figure is not a GPU figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from label_throughput import RESULTS, timed  # noqa: E402

KOBERT = [sys.executable, "-m", "pipelines.cli"]


def environment() -> dict:
    """The GPU (name, compute capability, memory), the CPU and the versions that ran."""
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cpus": os.cpu_count(), "gpu": None}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": properties.name, "capability": f"{properties.major}.{properties.minor}",
                       "memory_gib": round(properties.total_memory / 2**30, 1), "count": torch.cuda.device_count()}
    for module in ("ray", "transformers", "onnxruntime", "pyarrow"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def run(command: list[str], timeout: float) -> dict:
    """Run one `kobert` command (`label_throughput.timed`): wall seconds from process start to exit and the
    process tree's peak memory, or raise."""
    result = timed(command, timeout=timeout)
    result.pop("stdout")
    return {**result, "command": " ".join(command[2:])}


def make_input(source: Path, rows: int, folder: Path) -> Path:
    """`rows` reviews as Parquet files of at most 100,000 rows: `source`'s non-empty texts repeated, each row
    its own `review_id` (the labeler keeps every row, so repeats are labeled like new reviews)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [text for text in pq.read_table(source, columns=["text"])["text"].to_pylist() if text and text.strip()]
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, rows, 100_000):
        count = min(100_000, rows - start)
        ids = pa.array(range(start, start + count), pa.int64())
        chunk = [texts[(start + index) % len(texts)] for index in range(count)]
        pq.write_table(pa.table({"review_id": ids, "text": pa.array(chunk, pa.string())}),
                       folder / f"part-{start // 100_000:03d}.parquet")
    return folder


def label(model: Path, input_folder: Path, output: Path, rows: int, device: str, engine: str,
          timeout: float) -> dict:
    shutil.rmtree(output, ignore_errors=True)  # a rerun on a warm machine times a fresh run, not an incremental one
    command = [*KOBERT, "label", "--model", str(model), "--input", str(input_folder), "--output", str(output),
               "--device", device, "--engine", engine, "--table-format", "none", "--no-progress"]
    result = run(command, timeout)
    last = json.loads((output / "_SUCCESS").read_text())["runs"][-1]
    actors = last.get("actors", [])
    result.update(rows=rows, rows_labeled=last["rows"]["labeled"], reviews_per_s=round(rows / result["wall_s"], 1),
                  label_s=last["timings"].get("label_s"), path=actors[0].get("path") if actors else None)
    return result


def train(model: str, source: Path, rows: int, work: Path, use_gpu: bool, precision: str, timeout: float) -> dict:
    """`kobert prepare nsmc` of about `rows` training reviews (80% of the sample), then one epoch of training."""
    data, output = work / "train-data", work / "train-run"
    if not (data / "train.parquet").exists():
        run([*KOBERT, "prepare", "nsmc", "--input", str(source), "--output", str(data),
             "--sample", str(int(rows / 0.8))], 300)
    shutil.rmtree(output, ignore_errors=True)
    command = [*KOBERT, "train", "--model", model, "--train", str(data / "train.parquet"),
               "--eval", str(data / "eval.parquet"), "--epochs", "1", "--num-workers", "1",
               "--precision", precision, "--output", str(output), "--use-gpu" if use_gpu else "--no-use-gpu"]
    result = run(command, timeout)
    last = json.loads((output / "metrics.json").read_text())["history"][-1]
    result.update(train_samples=last["train_samples"], samples_per_s=round(last["train_samples_per_s"], 1),
                  precision=last["precision"], eval_accuracy=round(last["eval_accuracy"], 4))
    return result


def onnxruntime_cuda() -> dict:
    try:
        import onnxruntime
    except ImportError:
        return {"measured": False, "why": "onnxruntime is not installed"}
    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return {"measured": False, "providers": providers,
                "why": "this ONNX Runtime has no CUDAExecutionProvider (a CPU build; the GPU image's is one too, and "
                       "onnxruntime-gpu is over the 64 MiB a device call carries)"}
    return {"measured": False, "providers": providers,
            "why": "the CUDA provider is present; a CUDA engine for `kobert label --runtime onnx` is not built"}


def part(results: dict, name: str, action) -> None:
    """Run one part and record its figures, or its error in one line: the other parts still run."""
    started = time.perf_counter()
    try:
        results[name] = action()
    except Exception as error:  # noqa: BLE001 - a failed part is a result too; the rest must still run
        results[name] = {"error": f"{type(error).__name__}: {str(error)[-1500:]}"}  # the end holds stderr's tail
    results[name]["part_s"] = round(time.perf_counter() - started, 1)
    print(name, json.dumps(results[name], ensure_ascii=False), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the CPU and the tiny preset, small inputs")
    parser.add_argument("--rows", type=int, help="reviews labeled (default: 1,000,000; --smoke 3,000)")
    parser.add_argument("--train-rows", type=int, help="training reviews (default: 20,000; --smoke 400)")
    parser.add_argument("--work", default="/tmp/kobert-gpu-bench", help="scratch folder for models and outputs")
    parser.add_argument("--budget-s", type=float, default=540, help="seconds for everything (the device tool stops "
                                                                     "a command at 600): each part gets what is left")
    args = parser.parse_args()
    smoke = args.smoke
    rows = args.rows or (3_000 if smoke else 1_000_000)
    train_rows = args.train_rows or (400 if smoke else 20_000)
    preset, device = ("tiny", "cpu") if smoke else ("base", "cuda")
    deadline = time.monotonic() + args.budget_s

    def left() -> float:
        """Seconds a part may take: what the budget has left, less a margin for writing the results."""
        remaining = deadline - time.monotonic() - 15
        if remaining < 20:
            raise TimeoutError(f"not started: the {args.budget_s:.0f} s budget is spent")
        return remaining

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # `python -m pipelines.cli` finds the checkout's packages from here
    sys.path.insert(0, str(ROOT))
    from kobert_ops import paths

    source = paths.require(paths.nsmc_reviews(), "NSMC reviews", paths.NSMC_HELP)
    results = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "smoke": smoke,
               "environment": environment(), "preset": preset}
    if not smoke and not results["environment"]["gpu"]:
        print("gpu_bench: torch sees no GPU here; run with --smoke for the CPU check", file=sys.stderr)
        return 2
    model = work / f"{preset}-model"
    if not (model / "config.json").exists():
        run([*KOBERT, "init-model", "--preset", preset, "--output", str(model)], 300)
    input_folder = make_input(source, rows, work / f"input-{rows}")
    part(results, "label_local", lambda: label(model, input_folder, work / "labels-local", rows, device, "local",
                                               left()))
    has_ray = results["environment"]["ray"] is not None
    if has_ray:
        part(results, "label_ray", lambda: label(model, input_folder, work / "labels-ray", rows, device, "ray",
                                                 left()))
        part(results, "train", lambda: train(preset, source, train_rows, work, not smoke,
                                             "fp32" if smoke else "bf16", left()))
    else:
        results["label_ray"] = results["train"] = {"error": "ray is not importable here (carry its wheel: "
                                                            "bench/gpu_prepare.sh)"}
    part(results, "onnxruntime_cuda", onnxruntime_cuda)
    write(results, work)
    return 0 if all("error" not in results[name] for name in ("label_local", "label_ray", "train")) else 1


def write(results: dict, work: Path) -> None:
    if results["smoke"]:
        (work / "gpu-smoke.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "gpu.json"
    by_gpu = json.loads(path.read_text())["by_gpu"] if path.exists() else {}
    by_gpu[results["environment"]["gpu"]["name"]] = results
    path.write_text(json.dumps({"by_gpu": by_gpu}, indent=2, ensure_ascii=False) + "\n")
    lines = ["# GPU figures", "", "Written by `bench/gpu.sh` (bench/gpu_bench.py) on a lent GPU machine; raw figures "
             "in `gpu.json`. Wall seconds are process start to exit.", ""]
    for name, entry in sorted(by_gpu.items()):
        env = entry["environment"]
        lines += [f"## {name} (capability {env['gpu']['capability']}, {env['gpu']['memory_gib']} GiB), "
                  f"{env['cpus']} CPUs, torch {env['torch']}, measured {entry['measured_at']}", "",
                  "| part | figure | wall s |", "|---|---|---|"]
        for key in ("label_local", "label_ray", "train", "onnxruntime_cuda"):
            item = entry.get(key, {})
            figure = (item.get("error") or item.get("why")
                      or (f"{item['reviews_per_s']} reviews/s over {item['rows']:,}" if "reviews_per_s" in item
                          else f"{item.get('samples_per_s')} samples/s ({item.get('precision')})"))
            lines.append(f"| {key} | {figure} | {item.get('wall_s', '')} |")
        lines.append("")
    (RESULTS / "gpu.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
