"""Where a run keeps its checkpoints, and the guard that one run never takes over another's.

Ray Train restores whatever snapshot it finds under `storage_path/run_name`. So the run name is derived
from OUTPUT (two experiments that share a `--storage-path s3://…` but not an output get different folders),
and each run folder holds `kobert_run.json`: the output it belongs to and the DDP shape its step counts
assume. A run that would start over someone else's folder, or resume with another shape, is refused before
any work. Local paths and URIs (s3://, gs://, …) go through the same pyarrow filesystem Ray Train uses.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import UserError

IDENTITY_FILE = "kobert_run.json"
SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"


def is_uri(path: str) -> bool:
    return "://" in path


def absolute(path: str) -> str:
    """Absolute form of a local path (workers do not share the driver's working directory); URIs unchanged."""
    return path if is_uri(path) else str(Path(path).expanduser().resolve())


def require_data(option: str, uri: str | None) -> None:
    """Refuse, in one line naming the option, a data path (local or URI) that does not exist, before any
    model is loaded or Ray started.

    Raises:
        UserError: `uri` is neither a file nor a folder.
    """
    if uri is None:
        return
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        exists = fs.exists(path)
    except (ImportError, ValueError) as error:  # an unknown protocol, or its package (s3fs, gcsfs) missing
        raise UserError(f"{option} {uri}: cannot open it ({error})") from None
    if not exists:
        raise UserError(f"{option} {uri}: no such file or folder; give a Parquet file or a folder of them")


def default_run_name(output: str) -> str:
    """`<output's last folder>-<8 hex of the whole output>`: readable, and unique per output."""
    tail = re.sub(r"[^A-Za-z0-9_.-]+", "-", output.rstrip("/").split("/")[-1]) or "run"
    return f"{tail}-{hashlib.sha256(output.encode()).hexdigest()[:8]}"


def join(base: str, name: str) -> str:
    """`base/name` for a local path or a URI (`Path` would turn `s3://b` into `s3:/b`)."""
    return f"{base.rstrip('/')}/{name}" if is_uri(base) else str(Path(base) / name)


@contextmanager
def staged_output(output: str):
    """A local folder to write OUTPUT's files into: OUTPUT itself, or for a URI (s3://, gs://, …) a temporary
    folder uploaded there once the block succeeds (a failed run uploads nothing)."""
    if not is_uri(output):
        Path(output).mkdir(parents=True, exist_ok=True)
        yield Path(output)
        return
    import pyarrow.fs as pafs

    with tempfile.TemporaryDirectory(prefix="kobert-output-") as staging:
        yield Path(staging)
        fs, root = _filesystem(output)
        if fs.type_name == "local":  # an object store needs no folders, and an empty "dir/" marker is clutter
            fs.create_dir(root, recursive=True)
        pafs.copy_files(staging, root, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def _filesystem(storage_path: str):
    from ray.train.v2._internal.execution.storage import get_fs_and_path

    return get_fs_and_path(storage_path, None)


def _read(fs, path: str) -> dict | None:
    import pyarrow.fs as pafs

    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read().decode("utf-8"))


def run_exists(storage_path: str, run_name: str) -> bool:
    """True when Ray Train has a snapshot (a checkpoint to resume from) in this run folder."""
    import pyarrow.fs as pafs

    fs, root = _filesystem(storage_path)
    return fs.get_file_info(f"{root}/{run_name}/{SNAPSHOT_FILE}").type == pafs.FileType.File


def guard_run(storage_path: str, run_name: str, identity: dict, resume: bool) -> None:
    """Refuse to take over another run's folder, to start over an earlier run without `--resume`, or to
    resume with another shape; then record `identity` (output, objective, world size, batch size).

    Raises:
        UserError: the message says which flag to change.
    """
    fs, root = _filesystem(storage_path)
    folder = f"{root}/{run_name}"
    where = f"{storage_path.rstrip('/')}/{run_name}"
    recorded = _read(fs, f"{folder}/{IDENTITY_FILE}")
    exists = run_exists(storage_path, run_name)
    if recorded and recorded.get("output") != identity["output"]:
        raise UserError(f"{where} holds the run of another output ({recorded.get('output')}): give this run its "
                        f"own --run-name or --storage-path")
    if resume and not exists:
        raise UserError(f"--resume: no earlier run at {where} (nothing to continue; drop --resume)")
    if not resume and exists:
        raise UserError(f"{where} already holds a run of {identity['output']}: pass --resume to continue it, "
                        f"or use another --output")
    if resume and recorded:
        changed = [f"{key} {recorded.get(key)} → {identity[key]}" for key in ("objective", "num_workers", "batch_size")
                   if recorded.get(key) != identity[key]]
        if changed:
            raise UserError(f"--resume with another shape ({', '.join(changed)}): the checkpoint's step counts and "
                            f"schedule assume the old one; resume with the old values or start a new --output")
    fs.create_dir(folder, recursive=True)
    with fs.open_output_stream(f"{folder}/{IDENTITY_FILE}") as stream:
        stream.write((json.dumps(identity, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
