"""`kobert_ops.path_trial`: the short measurement `--runtime auto` makes once per machine and model to take the
fastest CPU path (issue 14). The choice itself, end to end on real exports, is in test_cpu_path.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kobert_ops import path_trial
from kobert_ops.predictor import Predictor

CPU = {"model": "a CPU", "int8_kernels": "VNNI", "amx": False}


def test_the_fastest_is_taken_but_a_near_tie_keeps_the_flags_order():
    order = ["openvino-int8", "onnx-int8", "torch"]
    assert path_trial.decide({"openvino-int8": 100.0, "onnx-int8": 130.0}, order) == "onnx-int8"
    assert path_trial.decide({"openvino-int8": 100.0, "onnx-int8": 104.0}, order) == "openvino-int8"  # within 5%
    assert path_trial.decide({"onnx-int8": 90.0, "torch": 100.0}, order) == "torch"
    assert path_trial.decide({"torch": 10.0}, order) == "torch"


def test_no_trial_where_its_result_cannot_be_kept_or_it_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    assert path_trial.enabled()
    monkeypatch.setenv("KOBERT_PATH_TRIAL", "off")
    assert not path_trial.enabled()
    monkeypatch.delenv("KOBERT_PATH_TRIAL")
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "a-file" / "cache"))  # no folder can be made there
    assert not path_trial.enabled()  # else every run would measure again


def test_every_path_gets_the_same_rows_of_one_review_length():
    ids, lengths = path_trial.synthetic_rows(8002)
    again, _ = path_trial.synthetic_rows(8002)
    assert ids.shape == (path_trial.ROWS, path_trial.LENGTH) and np.array_equal(ids, again)
    assert (lengths == path_trial.LENGTH).all() and ids.min() >= 5 and ids.max() < 8002  # past [CLS], [SEP], ...


def test_a_kept_result_holds_only_for_the_same_paths_threads_and_cpu():
    def candidates(onnx_graph):
        return [path_trial.Candidate("openvino-int8", "openvino aaa", lambda: None, ""),
                path_trial.Candidate("onnx-int8", f"onnx {onnx_graph}", lambda: None, "")]

    key = path_trial.trial_key(candidates("bbb"), 2, CPU)
    assert key == path_trial.trial_key(list(reversed(candidates("bbb"))), 2, CPU)  # the order is not the identity
    assert key != path_trial.trial_key(candidates("ccc"), 2, CPU)  # an export written again
    assert key != path_trial.trial_key(candidates("bbb"), 4, CPU)
    assert key != path_trial.trial_key(candidates("bbb"), 2, {**CPU, "model": "another CPU"})
    import numpy

    assert path_trial._install_stamp("numpy").startswith(numpy.__file__ + "@")  # another install: another key
    assert path_trial._install_stamp("no_such_runtime") is None


def test_a_path_that_cannot_open_is_recorded_and_the_other_taken(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))

    def broken():
        raise ImportError("No module named 'openvino'")

    candidates = [path_trial.Candidate("openvino-int8", "openvino aaa", broken, "first by the flags"),
                  path_trial.Candidate("torch", "torch fp32", lambda: Predictor(tiny_model_dir, device="cpu",
                                                                                precision="fp32", num_threads=1),
                                       "PyTorch")]
    candidate, predictor, record = path_trial.choose(candidates, 1, CPU)
    assert candidate.name == "torch" and isinstance(predictor, Predictor)
    assert record["failed"] == {"openvino-int8": "ImportError: No module named 'openvino'"}
    assert list(record["ids_per_s"]) == ["torch"] and record["ids_per_s"]["torch"] > 0
    [kept] = (tmp_path / "cache" / "path-trials").glob("*.json")
    assert json.loads(kept.read_text()) == record
    with pytest.raises(RuntimeError, match="no CPU path could be opened: openvino-int8: ImportError"):
        path_trial.measure(candidates[:1], 1, CPU)


def _choose_in_a_process(model_dir: str, cache: str, marks: str) -> str:
    """One label actor's start on a node: choose a path (a fresh process, as Ray starts actors)."""
    import os

    os.environ["KOBERT_CACHE"] = cache
    from kobert_ops import path_trial as trial
    from kobert_ops.predictor import Predictor

    def opened(precision):
        with open(os.path.join(marks, f"{os.getpid()}-{precision}"), "w"):
            pass  # a mark per predictor opened: only a measuring process opens both
        return Predictor(model_dir, device="cpu", precision=precision, num_threads=1)

    candidates = [trial.Candidate("torch", "torch fp32", lambda: opened("fp32"), ""),
                  trial.Candidate("torch-int8", "torch int8", lambda: opened("int8"), "")]
    return trial.choose(candidates, 1, CPU)[0].name


def test_actors_starting_together_on_a_node_measure_once_and_agree(tiny_model_dir, tmp_path):
    """The node lock: of three processes choosing at once, one measures (opens both paths), the others wait for
    its result and read it."""
    import multiprocessing

    marks = tmp_path / "marks"
    marks.mkdir()
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        chosen = pool.starmap(_choose_in_a_process, [(str(tiny_model_dir), str(tmp_path / "cache"), str(marks))] * 3)
    assert len(set(chosen)) == 1
    opened = sorted(path.name.split("-")[1] for path in marks.iterdir())
    assert opened == ["fp32", "int8"], opened  # one process measured; the other two opened nothing yet


def test_the_node_keeps_only_the_newest_trials(tmp_path):
    """An hourly job whose model changes every week writes a trial per model: the node keeps the newest
    `KEEP_TRIALS` (by write time), the one just written among them, and never the lock or a staged record."""
    import os

    folder = tmp_path / "path-trials"
    folder.mkdir()
    (folder / ".lock").write_text("")
    old = path_trial.KEEP_TRIALS + 3
    for index in range(old):
        (folder / f"old{index:03d}.json").write_text("{}")
        os.utime(folder / f"old{index:03d}.json", (1_000_000 + index, 1_000_000 + index))
    path_trial._write(folder, "new", {"chosen": "torch"})
    kept = sorted(path.name for path in folder.glob("*.json"))
    assert len(kept) == path_trial.KEEP_TRIALS and "new.json" in kept
    assert "old000.json" not in kept and "old003.json" not in kept and f"old{old - 1:03d}.json" in kept
    assert (folder / ".lock").exists()
    assert path_trial._read(folder, "new") == {"chosen": "torch"}
