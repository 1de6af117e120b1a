"""`kobert train` as users run it, for what fails before any training: one line, exit 2, Ray not started."""

import os
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.pipelines.label.helpers import KOBERT


@pytest.mark.parametrize("option", ["--train", "--eval"])
def test_a_missing_data_file_is_one_line_naming_the_option(tmp_path, option):
    """It printed only the bare path, after starting a local Ray."""
    present = tmp_path / "present.parquet"
    pq.write_table(pa.table({"text": ["좋다", "싫다"], "label": [1, 0]}), present)
    missing = tmp_path / "nowhere.parquet"
    paths = {"--train": present, "--eval": present, option: missing}
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    done = subprocess.run([*KOBERT, "train", "--model", "tiny", "--train", str(paths["--train"]), "--eval",
                           str(paths["--eval"]), "--output", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, env=environment)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"kobert train: error: {option} {missing}: no such file or folder; give a Parquet file or a folder of them"]
    assert not (tmp_path / "run").exists()

    earlier = tmp_path / "earlier-run"  # a good model trained there before, with --resume asked for
    earlier.mkdir()
    (earlier / "model.safetensors").write_bytes(b"earlier weights")
    (earlier / "metrics.json").write_text('{"best_epoch": 2}\n')
    before = {path.name: path.read_bytes() for path in earlier.iterdir()}
    again = subprocess.run([*KOBERT, "train", "--model", "tiny", "--train", str(paths["--train"]), "--eval",
                            str(paths["--eval"]), "--output", str(earlier), "--resume"],
                           capture_output=True, text=True, timeout=120, env=environment)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr[-2000:]
    assert f"{option} {missing}: no such file or folder" in again.stderr
    assert {path.name: path.read_bytes() for path in earlier.iterdir()} == before
