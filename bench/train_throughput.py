"""Training throughput (samples/s) of `kobert train` with 1 and 2 Ray Train workers on this machine.

    .venv/bin/python bench/train_throughput.py                       # tiny and small, 1 and 2 workers
    .venv/bin/python bench/train_throughput.py --presets tiny --rows 6000 --epochs 2

Each configuration is a real `kobert train` run (its own local Ray, DDP over gloo on CPU) on real NSMC
reviews, so the figure includes data loading, tokenization, bucketing and the all-reduce. Throughput is
training samples per second of the last epoch (the first also pays for worker and Ray Data start-up);
evaluation and checkpointing are not counted. With one worker it gets every core as torch threads; with N
workers each gets cores/N. Results go to bench/results/train_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def prepare(rows: int, directory: Path) -> Path:
    from kobert_ops import paths
    from pipelines.prepare import PrepareConfig, prepare as run_prepare

    source = paths.require(paths.nsmc_reviews(), "NSMC reviews", paths.NSMC_HELP)
    # eval/test take 10% each of the sample; the train split is what the benchmark times
    run_prepare(PrepareConfig(input=str(source), output=str(directory), sample=int(rows / 0.8)))
    return directory


def run_one(data: Path, preset: str, workers: int, epochs: int, max_length: int, batch_size: int, output: Path) -> dict:
    command = [
        sys.executable, "-m", "pipelines.cli", "train", "--model", preset,
        "--train", str(data / "train.parquet"), "--eval", str(data / "eval.parquet"),
        "--num-workers", str(workers), "--epochs", str(epochs), "--max-length", str(max_length),
        "--batch-size", str(batch_size), "--output", str(output),
    ]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    history = json.loads((output / "metrics.json").read_text())["history"]
    last = history[-1]
    return {
        "preset": preset,
        "workers": workers,
        "samples_per_s": round(last["train_samples_per_s"], 1),
        "samples_per_s_per_epoch": [round(entry["train_samples_per_s"], 1) for entry in history],
        "train_samples_per_epoch": last["train_samples"],
        "eval_accuracy": round(last["eval_accuracy"], 4),
        "precision": last["precision"],
        "wall_s_including_ray_start": round(wall, 1),
        # other work on the machine distorts the figure: the 1-minute load average before and after
        "load_avg_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def write(results: list[dict], settings: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"settings": settings, "results": results}
    (RESULTS / "train_throughput.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Training throughput (`kobert train`, Ray Train DDP on CPU)",
        "",
        f"{settings['machine']}; {settings['rows']} real NSMC reviews, max_length {settings['max_length']}, "
        f"batch {settings['batch_size']} per worker, {settings['epochs']} epochs, last epoch timed. "
        f"Command: `{settings['command']}`",
        "",
        "| preset | workers | samples/s | per epoch | speed-up vs 1 worker | eval acc | wall s (incl. Ray start) | load avg before/after |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    single = {r["preset"]: r["samples_per_s"] for r in results if r["workers"] == 1}
    for r in results:
        speedup = r["samples_per_s"] / single[r["preset"]] if r["preset"] in single else float("nan")
        lines.append(f"| {r['preset']} | {r['workers']} | {r['samples_per_s']} | {r['samples_per_s_per_epoch']} | "
                     f"{speedup:.2f}× | {r['eval_accuracy']} | {r['wall_s_including_ray_start']} | "
                     f"{r['load_avg_before_after']} |")
    lines += [
        "",
        "The machine may be shared: other jobs distort the figures (see the load average column; 2 cores",
        "means a load above 2 is contention), so figures move by tens of percent between runs. Training workers",
        "run with `OMP_WAIT_POLICY=PASSIVE` (set by `kobert train` on CPU): with spinning OpenMP threads, one",
        "worker with 2 threads on these shared cores fell to ~50-70 samples/s (tiny) instead of ~350-600.",
        "",
        "Reading: on one 2-core machine, 2 DDP workers (1 thread each) share the two cores that 1 worker uses",
        "as 2 threads, so the compute is the same; the ratio weighs the gloo all-reduce of every gradient and",
        "data sharding against how well one process keeps 2 threads busy on small matrices. On a Sapphire",
        "Rapids Xeon it went both ways (1.28x quiet, ~0.9x under heavy contention); compare this table's load",
        "column. Real scaling comes with more cores, nodes or GPUs.",
    ]
    (RESULTS / "train_throughput.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tiny,small")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rows", type=int, default=6000, help="training rows")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    from label_throughput import describe, machine  # the CPU model and its units decide fp32 vs bf16

    cpu = machine()
    settings = {
        "machine": describe(cpu) + ", no GPU", "cpu": cpu,
        "rows": args.rows, "epochs": args.epochs, "max_length": args.max_length, "batch_size": args.batch_size,
        "command": "python bench/train_throughput.py " + " ".join(sys.argv[1:]),
    }
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        data = prepare(args.rows, Path(scratch) / "data")
        for preset in args.presets.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                result = run_one(data, preset, workers, args.epochs, args.max_length, args.batch_size,
                                 Path(scratch) / f"{preset}-{workers}")
                print(json.dumps(result), flush=True)
                results.append(result)
    write(results, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
