"""Which input files an output has already labeled, by their content, not by their name or timestamps.

`--incremental` used to know a file by (path, size, mtime/etag) alone: a `cp` to another name, a `touch`, or
a re-upload (multipart ETags depend on the part size of the upload) made an unchanged file look new, and its
rows were labeled a second time beside the first. Now a file whose (path, size, mtime/etag) a committed run
recorded is done at once; any other file is known by its *digest*, the SHA-256 of its size and its Parquet
footer (the schema, every row group's byte offsets, sizes and column statistics, and the writer). Two files
with the same footer and size hold the same pages at the same offsets; a file rewritten with other rows has
other offsets or statistics. The footer is at most a few hundred KiB even for large files, and the
validate stage reads it anyway, so the digest costs one ranged read per new file, not a scan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from concurrent.futures import ThreadPoolExecutor

from pipelines.label.read import InputFile

FOOTER_TAIL = 8  # int32 footer length + b"PAR1"


def footer_digest(fs, file: InputFile) -> str:
    """`sha256:<hex>` of the file's size and Parquet footer."""
    with fs.open(fs._strip_protocol(file.path), "rb") as handle:
        handle.seek(file.size - FOOTER_TAIL)
        tail = handle.read(FOOTER_TAIL)
        if len(tail) != FOOTER_TAIL or tail[4:] != b"PAR1":
            raise ValueError(f"{file.path} does not end like a Parquet file")
        (length,) = struct.unpack("<i", tail[:4])
        handle.seek(file.size - FOOTER_TAIL - length)
        footer = handle.read(length)
    return "sha256:" + hashlib.sha256(str(file.size).encode() + b"\0" + footer + tail).hexdigest()


def with_digests(fs, files: list[InputFile]) -> list[InputFile]:
    """`files` with `digest` set (16 footers at a time: object stores answer slowly but in parallel). A file
    whose footer cannot be read keeps no digest: the validate stage then names it in one line."""
    def digest(file: InputFile) -> InputFile:
        try:
            return dataclasses.replace(file, digest=footer_digest(fs, file))
        except (OSError, ValueError, struct.error):
            return file

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(digest, files))


def new_files(fs, files: list[InputFile], labeled: list[InputFile]) -> tuple[list[InputFile], list[InputFile]]:
    """(files to label, files skipped because a committed run labeled the same content under another name
    or timestamp)."""
    keys = {file.key for file in labeled}
    digests = {file.digest for file in labeled if file.digest}
    candidates = with_digests(fs, [file for file in files if file.key not in keys])
    fresh = [file for file in candidates if file.digest is None or file.digest not in digests]
    return fresh, [file for file in candidates if file.digest is not None and file.digest in digests]
