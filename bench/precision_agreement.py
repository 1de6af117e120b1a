"""How much a faster precision changes a trained model's labels: each precision against fp32 on the same rows.

    .venv/bin/python bench/precision_agreement.py --model artifacts/nsmc/model --data artifacts/nsmc/data/test.parquet

Speed-ups such as `--precision int8` (dynamic int8 quantization) or `bf16-full` are only worth having if the
labels stay those of the fp32 model. On random weights almost every row sits at probability ~0.5, so this
needs a trained model (the NSMC recipe's, say). For every precision the script records the share of rows
whose label equals fp32's, the largest and mean probability difference, accuracy against the data's labels,
and the forward rows/s of each (same process, same rows, length-sorted batches). Precisions the CPU runs
only by emulation (bf16 on AVX2-only CPUs: hundreds of times slower) are skipped there and say so.
Results go to bench/results/precision_agreement.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from label_throughput import RESULTS, describe, machine  # noqa: E402  (bench/ is not a package)


def measure(model: str, texts: list[str], labels, precisions: list[str], batch_size: int, max_length: int) -> dict:
    import numpy as np

    from kobert_ops.predictor import Predictor, bf16_is_fast
    from kobert_ops.tokenizer import KoBERTTokenizer

    encoded = KoBERTTokenizer.from_pretrained(model).batch_encode(texts, max_length=max_length, padding="longest")
    runs: dict[str, dict] = {}
    for precision in ["fp32", *[p for p in precisions if p != "fp32"]]:
        if precision.startswith("bf16") and not bf16_is_fast("cpu"):
            runs[precision] = {"skipped": "this CPU has no bf16 units: bf16 would run emulated"}
            continue
        predictor = Predictor(model, device="cpu", precision=precision, batch_size=batch_size, max_length=max_length)
        started = time.perf_counter()
        result = predictor.predict_encoded(encoded["input_ids"], encoded["valid_length"])
        seconds = time.perf_counter() - started
        runs[precision] = {"result": result, "forward_s": round(seconds, 2),
                           "rows_per_s": round(len(texts) / seconds, 1)}
    reference = runs["fp32"]["result"]
    summary = {}
    for precision, run in runs.items():
        if "skipped" in run:
            summary[precision] = run
            continue
        result = run.pop("result")
        difference = np.abs(result.probabilities - reference.probabilities)
        summary[precision] = {**run,
                              "label_agreement_with_fp32": round(float((result.label == reference.label).mean()), 5),
                              "rows_with_other_label": int((result.label != reference.label).sum()),
                              "max_probability_difference": round(float(difference.max()), 5),
                              "mean_probability_difference": round(float(difference.mean()), 6),
                              "accuracy": round(float((result.label == labels).mean()), 5)}
    return summary


def main() -> None:
    import pyarrow.parquet as pq

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained classifier directory")
    parser.add_argument("--data", required=True, help="Parquet with text and label columns")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--precisions", default="fp32,int8,bf16-full", help="comma-separated; fp32 is the reference")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    table = pq.read_table(args.data, columns=[args.text_column, args.label_column])
    texts = [text or "" for text in table[args.text_column].to_pylist()]
    labels = table[args.label_column].to_numpy()
    results = {"model": args.model, "data": args.data, "rows": len(texts),
               "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
               "precisions": measure(args.model, texts, labels, args.precisions.split(","), args.batch_size,
                                     args.max_length)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "precision_agreement.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    lines = ["# Labels under faster precisions, against fp32", "",
             f"Written by `bench/precision_agreement.py`. Model `{args.model}`, {len(texts):,} rows of `{args.data}`; "
             f"measured {results['measured_at']} on {describe(results['machine'])}.", "",
             "| precision | label = fp32's | rows with another label | max / mean prob. difference | accuracy | "
             "forward rows/s |", "|---|---|---|---|---|---|"]
    for precision, run in results["precisions"].items():
        if "skipped" in run:
            lines.append(f"| {precision} | skipped: {run['skipped']} | | | | |")
        else:
            lines.append(f"| {precision} | {run['label_agreement_with_fp32']:.3%} | {run['rows_with_other_label']} | "
                         f"{run['max_probability_difference']} / {run['mean_probability_difference']} | "
                         f"{run['accuracy']:.4f} | {run['rows_per_s']} |")
    (RESULTS / "precision_agreement.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
