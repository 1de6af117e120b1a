"""Read stage: find the input Parquet files on any fsspec filesystem and stream their rows.

Files are listed up front (folder, glob or explicit list) so the run knows exactly what it labels: the
manifest records each file with its size and modification time or etag, and `--incremental` compares them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.errors import UserError


@dataclass(frozen=True)
class InputFile:
    """One input Parquet file as the manifest records it."""

    path: str  # full URI, e.g. s3://bucket/reviews/part-0.parquet or /data/reviews.parquet
    size: int
    modified: str | None  # mtime (local) or LastModified (object stores), as text
    etag: str | None
    digest: str | None = None  # sha256 of size and Parquet footer (pipelines/label/identity.py)

    @property
    def key(self) -> tuple:
        """What identifies an already-labeled file: path, size and modification time or etag."""
        return (self.path, self.size, self.etag or self.modified)

    def to_json(self) -> dict:
        return asdict(self)


def filesystem_of(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of a URI and the path inside it."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """This machine's own disk (fsspec's `file`/`local`), not an object store."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def full_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if is_local(fs) else f"{protocol}://{path}"


def _is_hidden(path: str) -> bool:
    """`_SUCCESS`, `.crc` files and the like: never data (Hive/Spark convention)."""
    return path.rstrip("/").rsplit("/", 1)[-1].startswith(("_", "."))


def _is_data_file(path: str) -> bool:
    return path.endswith(".parquet") and not _is_hidden(path)


def list_input_files(inputs: list[str]) -> tuple[fsspec.AbstractFileSystem, list[InputFile]]:
    """Every Parquet file named by `inputs` (files, folders searched recursively, globs), sorted, each once.

    Raises:
        UserError: a path that does not exist, a glob or folder without Parquet files, or inputs on
            different filesystems.
    """
    fs = None
    found: dict[str, dict] = {}
    for uri in inputs:
        this_fs, path = filesystem_of(uri)
        if fs is not None and type(this_fs) is not type(fs):
            raise UserError(f"inputs must share one filesystem; {uri} differs from {inputs[0]}")
        fs = this_fs
        if any(char in path for char in "*?["):
            matches = {p: info for p, info in fs.glob(path, detail=True).items()
                       if info["type"] == "file" and not _is_hidden(p)}
            if not matches:
                raise UserError(f"input glob matches no file: {uri}")
        elif not fs.exists(path):
            raise UserError(f"input not found: {uri}")
        elif fs.isdir(path):
            matches = fs.find(path, detail=True)
            matches = {p: info for p, info in matches.items()
                       if _is_data_file(p) and not any(map(_is_hidden, p[len(path):].split("/")))}
            if not matches:
                raise UserError(f"input folder holds no .parquet file: {uri}")
        else:
            matches = {path: fs.info(path)}
        found.update(matches)
    files = [_input_file(fs, path, info) for path, info in sorted(found.items())]
    return fs, files


def _input_file(fs, path: str, info: dict) -> InputFile:
    modified = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("last_modified")
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    return InputFile(path=full_uri(fs, path), size=int(info["size"]), modified=str(modified) if modified else None,
                     etag=str(etag).strip('"') if etag else None)


def read_ray(fs, files: list[InputFile], columns: list[str], rows_per_block: int):
    """A streaming Ray Dataset over `files` (only `columns`, no Hive partition inference) in blocks of at most
    `rows_per_block` rows.

    Blocks are cut by rows because Ray's Parquet reader cuts them only by bytes: it packs row groups into read
    tasks of up to 128 MiB and yields a block per `target_max_block_size`, so 60,000 short reviews in 6 files
    were one block, which one model actor labeled while the others idled. Blocks of rows are what the actors
    share out, and all a lost node has to repeat.
    """
    import ray.data
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    paths = [fs._strip_protocol(f.path) for f in files]
    dataset = ray.data.read_parquet(paths, filesystem=PyFileSystem(FSSpecHandler(fs)), columns=columns,
                                    partitioning=None)
    return dataset.repartition(target_num_rows_per_block=rows_per_block)


def read_local(fs, files: list[InputFile], columns: list[str], batch_size: int) -> Iterator[pa.Table]:
    """The same rows without Ray: record batches of at most `batch_size` rows, file after file.

    Raises:
        CorruptInputError: a data page of a file could not be decoded.
    """
    for file in files:
        with fs.open(fs._strip_protocol(file.path), "rb") as handle:
            batches = pq.ParquetFile(handle).iter_batches(batch_size=batch_size, columns=columns)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (OSError, pa.ArrowException) as error:
                    if not is_decode_error(error):
                        raise
                    raise CorruptInputError(file.path, error) from error
                yield pa.Table.from_batches([batch])


class CorruptInputError(UserError):
    """A data page of an input file could not be decoded although its footer could (a torn or partial copy):
    bad input, exit 2, like a file that is not Parquet at all."""

    def __init__(self, path: str, error: BaseException) -> None:
        # (the first line: Ray appends its retry advice, which does not apply to a damaged file)
        reason = next(iter(str(error).strip().splitlines()), "").rstrip(".") or type(error).__name__
        super().__init__(f"input {path} has a corrupt data page ({reason}; its footer reads fine: a torn or "
                         "partial copy?); copy the file again, or move it out of the input")
        self.path = path


def is_decode_error(error: BaseException) -> bool:
    """pyarrow failed to decode the bytes it read (not an I/O failure such as a lost connection, which carries
    an errno or is an fsspec/aiohttp error, and may pass on a retry)."""
    return isinstance(error, (OSError, pa.ArrowException)) and getattr(error, "errno", None) is None \
        and not isinstance(error, (ConnectionError, TimeoutError))


# Ray Data's read task names the file it failed on: "Failed to read fragment <path> after 1/10 attempts"
_RAY_READ_FAILURE = re.compile(r"Failed to read fragment (\S+) after \d+/\d+ attempts")


def corrupt_input(error: BaseException) -> CorruptInputError | None:
    """The corrupt-input error inside `error`, as raised here or by a Ray Data read task (wrapped in Ray's
    `RayTaskError`, whose `cause` is the worker's exception); None if `error` is anything else."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, CorruptInputError):
            return current
        pending.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    found = _RAY_READ_FAILURE.search(str(error))
    cause = getattr(error, "cause", None)
    if found and cause is not None and is_decode_error(cause):
        return CorruptInputError(found.group(1), cause)
    return None
