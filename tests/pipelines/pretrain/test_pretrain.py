"""`kobert pretrain` on real reviews: MLM loss falls, ranks stay in sync, and a classifier starts from the result."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.pretrain.data import _non_blank, _part, in_eval

KOBERT = str(Path(sys.executable).with_name("kobert"))


def test_eval_holdout_is_stable_and_near_its_share(real_reviews):
    texts = [t for t in real_reviews if t]
    held = [t for t in texts if in_eval(t, 100)]
    assert abs(len(held) / len(texts) - 0.1) < 0.02
    assert all(in_eval(t, 100) for t in held)  # the same text always lands on the same side


def test_blank_and_excluded_texts_are_dropped_and_the_parts_are_disjoint(real_reviews):
    texts = ["좋다", None, "", "  ", "\u3000\n", "별로", *[t for t in real_reviews[:400] if t and t.strip()]]
    kept = _non_blank(pa.table({"text": texts}), "text")["text"].to_pylist()
    assert kept == [t for t in texts if t is not None and t.strip()]
    table = pa.table({"text": kept})
    train, held = (_part(table, "text", 100, frozenset({"별로"}), want_eval)["text"].to_pylist()
                   for want_eval in (False, True))
    assert "별로" not in train + held and sorted(train + held) == sorted(t for t in kept if t != "별로")
    assert held and all(in_eval(t, 100) for t in held) and not any(in_eval(t, 100) for t in train)


@pytest.mark.ray
def test_pretrain_then_build_a_classifier_on_it(tmp_path, nsmc_path, tokenizer_dir):
    texts = pq.read_table(nsmc_path, columns=["text"]).slice(0, 2500)
    excluded = tmp_path / "exclude.parquet"
    pq.write_table(texts.slice(0, 500), excluded)
    argv = [KOBERT, "pretrain", "--model", "tiny", "--data", str(nsmc_path), "--limit", "2500", "--exclude",
            str(excluded), "--eval-per-mille", "100", "--num-workers", "2", "--epochs", "2", "--batch-size", "32"]
    # stopped after epoch 1 (no automatic retry), then `--resume`: it used to die on the MLM head's tied weights
    output = tmp_path / "mlm"
    failed = subprocess.run([*argv, "--max-failures", "0", "--output", str(output)], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "KOBERT_FAULT_AFTER_EPOCH": "1"})
    assert failed.returncode == 1 and "--resume" in failed.stderr, failed.stderr[-3000:]
    resumed = subprocess.run([*argv, "--resume", "--output", str(output)], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Ray Data's "Use 'expr' instead of 'fn'" (a Dataset.filter with a function) never reaches the console
    assert "instead of 'fn'" not in resumed.stdout + resumed.stderr
    metrics = json.loads((output / "metrics.json").read_text())
    first, last = metrics["history"]
    assert [(e["epoch"], e["resumed_from_epoch"]) for e in (first, last)] == [(1, 0), (2, 1)]
    assert last["global_step"] == 2 * first["global_step"]  # epoch 2 continued epoch 1's steps, not step 0
    assert last["eval_mlm_loss"] < first["eval_mlm_loss"] < math.log(8002)  # below a uniform guess, falling
    assert len(set(last["fingerprints"])) == 1 and len(last["fingerprints"]) == 2  # DDP ranks identical
    assert metrics["run"]["train_rows"] + metrics["run"]["eval_rows"] <= 2000  # excluded texts never used
    assert (output / "pretraining_curves.png").stat().st_size > 0

    from safetensors.torch import load_file

    from kobert_ops.model import load_classifier

    classifier = load_classifier(output, labels=["부정", "긍정"])  # fresh head on the pretrained encoder
    pretrained = load_file(str(output / "model.safetensors"))
    assert (classifier.bert.embeddings.word_embeddings.weight == pretrained["bert.embeddings.word_embeddings.weight"]).all()

    # `kobert train --model <this folder>` fine-tuning end to end: tests/pipelines/recipes/test_nsmc.py (the
    # recipe pretrains, then trains from the pretrained folder); here, the classifier it builds works
    import torch

    logits = classifier(input_ids=torch.tensor([[2, 100, 3]])).logits
    assert logits.shape == (1, 2)
