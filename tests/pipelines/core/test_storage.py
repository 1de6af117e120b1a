"""The run folder guard: runs of different outputs never share state; resumes keep their shape."""

import pytest

from pipelines.core.storage import SNAPSHOT_FILE, default_run_name, guard_run
from pipelines.errors import UserError


def _identity(output, **changes):
    return {"output": output, "objective": "classification", "num_workers": 2, "batch_size": 32, **changes}


def _finish(storage, run):  # what Ray Train leaves once a checkpoint is committed
    (storage / run / SNAPSHOT_FILE).write_text("{}")


def test_outputs_that_share_a_storage_path_get_their_own_run_folders(tmp_path):
    first, second = default_run_name("/runs/a/model"), default_run_name("/runs/b/model")
    assert first != second and first.startswith("model-") and second.startswith("model-")


def test_guard_refuses_takeover_restart_and_reshaped_resume(tmp_path):
    storage = str(tmp_path)
    guard_run(storage, "shared", _identity("/out/a"), resume=False)
    _finish(tmp_path, "shared")
    with pytest.raises(UserError, match="another output"):  # the same --run-name from another output
        guard_run(storage, "shared", _identity("/out/b"), resume=False)
    with pytest.raises(UserError, match="pass --resume"):
        guard_run(storage, "shared", _identity("/out/a"), resume=False)
    with pytest.raises(UserError, match="num_workers 2 → 4"):
        guard_run(storage, "shared", _identity("/out/a", num_workers=4), resume=True)
    guard_run(storage, "shared", _identity("/out/a"), resume=True)
    with pytest.raises(UserError, match="no earlier run"):
        guard_run(storage, "other", _identity("/out/a"), resume=True)


def test_a_run_that_died_before_its_first_checkpoint_can_start_again(tmp_path):
    guard_run(str(tmp_path), "r", _identity("/out/a"), resume=False)
    guard_run(str(tmp_path), "r", _identity("/out/a"), resume=False)  # nothing to resume: a fresh start is fine


def test_the_guard_works_on_object_storage(s3_env, monkeypatch):
    """`--storage-path s3://…` used to skip the guard entirely (a second run continued the first)."""
    import s3fs

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir("ckpt")
    guard_run("s3://ckpt/runs", "shared", _identity("s3://models/a"), resume=False)
    with pytest.raises(UserError, match="another output"):
        guard_run("s3://ckpt/runs", "shared", _identity("s3://models/b"), resume=False)
