"""A planted `pytorch_model.bin` (a pickle that runs code when unpickled) is refused in one line by every
command that loads a model, and its code never runs; plain pickled weights (what SKT ships) still load."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tests.pipelines.label.helpers import KOBERT


class Planted:
    """Unpickling this runs `touch <marker>` (what an attacker's checkpoint would do, less politely)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def planted_model(source: Path, folder: Path, marker: Path) -> Path:
    """`source`'s config and tokenizer, with its safetensors weights replaced by a planted pickle."""
    shutil.copytree(source, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    torch.save({"bert.embeddings.word_embeddings.weight": Planted(marker)}, folder / "pytorch_model.bin")
    return folder


@pytest.fixture
def planted(tiny_model_dir, tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "code-ran"
    return planted_model(tiny_model_dir, tmp_path / "planted-model", marker), marker


def test_the_planted_pickle_really_runs_code_when_unpickled_unsafely(planted):
    folder, marker = planted
    torch.load(folder / "pytorch_model.bin", weights_only=False)  # what a careless loader would do
    assert marker.exists()


def test_a_planted_pickle_is_refused_before_loading(planted):
    from kobert_ops.hub import resolve
    from kobert_ops.safe_weights import UnsafeCheckpointError

    folder, marker = planted
    with pytest.raises(UnsafeCheckpointError, match=r"pytorch_model.bin .*posix.system") as caught:
        resolve(folder, allow_patterns=["*.bin"])
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)
    assert not marker.exists()


def test_plain_pickled_weights_still_load(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    from kobert_ops.model import load_classifier

    folder = tmp_path / "bin-model"
    shutil.copytree(tiny_model_dir, folder)
    state = {}
    for weights in folder.glob("*.safetensors"):
        state.update(load_file(weights))
        weights.unlink()
    torch.save(state, folder / "pytorch_model.bin")
    assert load_classifier(folder).config.id2label == {0: "부정", 1: "긍정"}


def commands(model: Path, tmp_path: Path) -> dict[str, list[str]]:
    data = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"review_id": [1, 2], "text": ["좋다", "싫다"], "label": [1, 0]}), data)
    return {
        "label-local": ["label", "--model", str(model), "--input", str(data), "--output", str(tmp_path / "labels"),
                        "--engine", "local"],
        "label-ray": ["label", "--model", str(model), "--input", str(data), "--output", str(tmp_path / "labels-ray"),
                      "--engine", "ray"],
        "evaluate": ["evaluate", "--model", str(model), "--data", str(data)],
        "train": ["train", "--model", str(model), "--train", str(data), "--eval", str(data), "--labels", "부정,긍정",
                  "--output", str(tmp_path / "run")],
    }


@pytest.mark.parametrize("command", ["label-local", "label-ray", "evaluate", "train"])
def test_every_command_refuses_a_planted_pickle_in_one_line(planted, tmp_path, command):
    """It used to be refused only by torch's default deep inside transformers: exit 1 after a 39-line
    traceback (evaluate), or ~300 lines from Ray Train's workers ending in advice to --resume (train)."""
    folder, marker = planted
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    done = subprocess.run([*KOBERT, *commands(folder, tmp_path)[command]], capture_output=True, text=True,
                          timeout=240, env=environment)
    name = command.split("-")[0]
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"kobert {name}: error: model {folder} is refused: its pytorch_model.bin is a pickle that "), done.stderr
    assert "Traceback" not in done.stderr and "posix.system" in done.stderr
    assert not marker.exists()
