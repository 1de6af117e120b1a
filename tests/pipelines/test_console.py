"""The console of a `kobert` command (issue 13): Ray's C++ lines written to file descriptor 2 go to the log
file while everything else passes; progress off a terminal is plain lines; the epoch line is short."""

from __future__ import annotations

import subprocess
import sys

from pipelines.core.progress import epoch_line

# A C++ error line as Ray's core writes it straight to fd 2, a plain C-level line, and Python's own stderr.
PROGRAM = r"""
import os, sys
from pipelines import console
console.setup("probe", verbose=sys.argv[1] == "-v")
with console.cpp_lines_to_log():
    os.write(2, b"[2026-12-03 18:29:01,767 E 5529 5529] core_worker.cc:2465: Actor with class name: 'X' has "
                b"constructor arguments in the object store and max_restarts > 0.\n")
    os.write(2, b"a C library's own warning\n")
    print("python stderr line", file=sys.stderr)
    progress = console.Progress("label", 10, "rows")
    progress.update(10, "2 rejected")
    progress.close()
print(console.log_path())
"""


def probe(tmp_path, *flags):
    env = {"KOBERT_LOG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROGRAM, *flags], capture_output=True, text=True, env=env,
                          timeout=60, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert done.returncode == 0, done.stderr
    return done


def test_ray_cpp_lines_go_to_the_log_file_and_everything_else_to_the_console(tmp_path):
    done = probe(tmp_path, "-q")
    assert "core_worker.cc" not in done.stderr
    assert "a C library's own warning" in done.stderr and "python stderr line" in done.stderr
    # off a terminal, progress is tqdm's plain line: count, rate, postfix
    assert any(line.startswith("label: 100% 10/10 ") and "2 rejected" in line for line in done.stderr.splitlines())
    log = open(done.stdout.strip().splitlines()[-1]).read()
    assert "core_worker.cc:2465" in log and "a C library's own warning" not in log


def test_verbose_keeps_every_line_on_the_console(tmp_path):
    done = probe(tmp_path, "-v")
    assert "core_worker.cc:2465" in done.stderr


def test_the_epoch_line_holds_the_losses_and_scores_not_the_whole_metrics_dict():
    entry = {"epoch": 2, "global_step": 86, "train_loss": 0.69609, "train_samples": 1350, "train_samples_per_s": 45.8,
             "eval_loss": 0.69089, "eval_accuracy": 0.5, "eval_n": 150.0, "epoch_seconds": 31.2,
             "fingerprints": ["ab"], "nodes": ["n"]}
    assert epoch_line(entry, 3) == ("epoch 2/3: train loss 0.6961, eval_loss 0.6909, eval_accuracy 0.5000, "
                                    "46 samples/s, 31 s")
