"""The Ray Train core's guarantees on a real local Ray: runs that share storage stay apart, every eval row is
scored, training data is shuffled globally, and a worker killed mid-epoch costs only the steps since the last
mid-epoch checkpoint."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]
FAST = ["--model", "tiny", "--num-workers", "2", "--max-length", "64", "--batch-size", "32"]


def _metrics(output: Path) -> dict:
    return json.loads((output / "metrics.json").read_text())


def _odd_sized_eval(source: Path, target: Path, rows: int) -> Path:
    """An eval file of exactly `rows` rows (an odd count that 2 ranks cannot split evenly)."""
    table = pq.read_table(source)
    table = pa.concat_tables([table] * (rows // table.num_rows + 1)).slice(0, rows)
    pq.write_table(table, target)
    return target


def test_runs_sharing_storage_never_exchange_state_and_eval_scores_every_row(local_ray, nsmc_2k, nsmc_ternary,
                                                                            tmp_path):
    storage = tmp_path / "shared-storage"
    eval_1001 = _odd_sized_eval(nsmc_2k / "eval.parquet", tmp_path / "eval-1001.parquet", 1001)
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", *FAST, "--train", str(nsmc_2k / "train.parquet"), "--eval", str(eval_1001),
                 "--epochs", "2", "--max-steps-per-epoch", "8", "--storage-path", str(storage),
                 "--output", str(first)]) == 0
    history = _metrics(first)["history"]
    assert [entry["eval_n"] for entry in history] == [1001, 1001]  # streaming_split(equal=True) scored 1,000

    # a second experiment (other data, other labels) with the same --storage-path and another --output
    assert main(["train", *FAST, "--train", str(nsmc_ternary / "train.parquet"), "--eval",
                 str(nsmc_ternary / "eval.parquet"), "--epochs", "1", "--max-steps-per-epoch", "8",
                 "--storage-path", str(storage), "--output", str(second)]) == 0
    other = _metrics(second)["history"]
    assert [(e["epoch"], e["resumed_from_epoch"]) for e in other] == [(1, 0)]  # it trained; it took nothing over
    assert other[0]["initial_fingerprint"] not in {fp for e in history for fp in e["fingerprints"]}
    assert _metrics(second)["best_eval"]["labels"] == ["부정", "중립", "긍정"]
    assert len({p.name for p in storage.iterdir()}) == 2  # one run folder per output


def test_global_shuffle_mixes_label_sorted_data(local_ray, tokenizer_dir):
    """Data sorted by label: the old local window of ~2,048 rows trained on long single-class runs."""
    import ray.data

    from kobert_ops.tokenizer import load_tokenizer
    from pipelines.core.data import shuffled
    from pipelines.train.data import worker_batches

    # one text for all rows: equal lengths, so length bucketing cannot correlate with the label
    frame = pd.DataFrame({"text": ["좋은 영화"] * 8000, "label": [0] * 4000 + [1] * 4000})
    dataset = ray.data.from_pandas(frame).repartition(16)  # blocks of 500 rows in label order, as files would be
    tokenizer = load_tokenizer(tokenizer_dir)

    def first_batches(shuffle: str) -> list[float]:
        batches = worker_batches(shuffled(dataset, shuffle).iterator(), tokenizer, "text", "label", 32, 32, 32, seed=1)
        return [float(next(batches)["labels"].mean()) for _ in range(6)]

    assert max(first_batches("none")) < 0.25  # the buffer holds a few blocks: almost all one class
    assert all(0.2 < share < 0.8 for share in first_batches("global"))


def _train_worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"RayTrainWorker" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_worker_killed_mid_epoch_resumes_from_the_mid_epoch_checkpoint(local_ray, nsmc_2k, tmp_path):
    output, storage = tmp_path / "run", tmp_path / "storage"
    killed: list[int] = []

    def kill_after_first_mid_epoch_checkpoint() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            snapshots = list(storage.glob("*/checkpoint_manager_snapshot.json"))
            # committed (named in Ray Train's snapshot), not just uploading
            if snapshots and "checkpoint_epoch001_step" in snapshots[0].read_text(errors="replace"):
                pids = _train_worker_pids()
                if pids:
                    os.kill(pids[-1], signal.SIGKILL)  # a real kill: no exception, no cleanup
                    killed.append(pids[-1])
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_after_first_mid_epoch_checkpoint, daemon=True)
    killer.start()
    code = main(["train", "--model", "small", "--num-workers", "2", "--max-length", "64", "--batch-size", "16",
                 "--train", str(nsmc_2k / "train.parquet"), "--eval", str(nsmc_2k / "eval.parquet"),
                 "--epochs", "1", "--checkpoint-every-steps", "10", "--max-failures", "1", "--storage-path",
                 str(storage), "--output", str(output)])
    killer.join(timeout=5)
    assert killed, "no mid-epoch checkpoint appeared to kill a worker after"
    assert code == 0
    (entry,) = _metrics(output)["history"]
    steps = -(-(2000 // 2) // 16)  # 63 optimizer steps per rank: what an undisturbed run takes
    assert entry["global_step"] == steps
    assert 0 < entry["resumed_from_step"] < steps and entry["resumed_from_step"] % 10 == 0  # from mid-epoch
    # rows counted across the restart: the steps after it draw from a fresh pass, whose batches are all full
    # (an undisturbed epoch ends in a partial batch of 8 per rank), so at most 2 × 8 more than 2,000
    assert 2000 <= entry["train_samples"] <= 2016
    assert len(set(entry["fingerprints"])) == 1
