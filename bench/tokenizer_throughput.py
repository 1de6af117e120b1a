"""Tokenizer throughput on real NSMC reviews, against a plain per-text baseline measured in the same run.

    .venv/bin/python bench/tokenizer_throughput.py [--rows 200000]

The baseline is the straightforward implementation (per-text preprocessing, SentencePiece string pieces,
vocabulary dict lookups: what SKT's tokenizer does); `batch_encode` is what the pipelines call. Figures go to
`bench/results/tokenizer_throughput.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kobert_ops import paths  # noqa: E402
from kobert_ops.tokenizer import KoBERTTokenizer  # noqa: E402
from tests.kobert_ops.reference_tokenizer import ReferenceKoBERT  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="reviews to tokenize")
    parser.add_argument("--baseline-rows", type=int, default=20_000, help="reviews for the slow baseline")
    args = parser.parse_args()

    texts = [t for t in pq.read_table(paths.nsmc_reviews(), columns=["text"])["text"].to_pylist() if t]
    texts = (texts * (args.rows // len(texts) + 1))[: args.rows]
    tokenizer = KoBERTTokenizer.from_pretrained(paths.kobert_tokenizer_dir())
    reference = ReferenceKoBERT(paths.kobert_tokenizer_dir())
    baseline_texts = texts[: args.baseline_rows]

    baseline_s = timed(lambda: [reference.encode(t) for t in baseline_texts])
    encode_s = timed(lambda: [tokenizer.encode(t) for t in baseline_texts])
    rows = {}
    for threads in (1, os.cpu_count() or 1):
        seconds = min(timed(tokenizer.batch_encode, texts[i : i + 4096], max_length=128, num_threads=threads)
                      for i in range(0, 3 * 4096, 4096))
        full = timed(lambda: [tokenizer.batch_encode(texts[i : i + 4096], max_length=128, num_threads=threads)
                              for i in range(0, len(texts), 4096)])
        rows[threads] = {"reviews_per_s": len(texts) / full, "best_4096_batch_s": seconds}

    baseline_rate = len(baseline_texts) / baseline_s
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "reviews": len(texts),
        "baseline_reviews_per_s": baseline_rate,
        "encode_one_by_one_reviews_per_s": len(baseline_texts) / encode_s,
        "batch_encode": {str(k): v for k, v in rows.items()},
        "speedup_vs_baseline": {str(k): v["reviews_per_s"] / baseline_rate for k, v in rows.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tokenizer_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "| path | reviews/s | × baseline |",
        "|---|---:|---:|",
        f"| baseline: per-text reference (SKT's algorithm) | {baseline_rate:,.0f} | 1.0 |",
        f"| `encode` one text at a time | {result['encode_one_by_one_reviews_per_s']:,.0f} | "
        f"{result['encode_one_by_one_reviews_per_s'] / baseline_rate:.1f} |",
    ]
    for threads, row in rows.items():
        lines.append(f"| `batch_encode`, batches of 4,096, {threads} thread(s) | {row['reviews_per_s']:,.0f} | "
                     f"{row['reviews_per_s'] / baseline_rate:.1f} |")
    table = "\n".join(lines)
    (RESULTS / "tokenizer_throughput.md").write_text(
        f"Tokenizer throughput, {len(texts):,} real NSMC reviews, {result['machine']}.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
