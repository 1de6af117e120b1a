"""Helpers of the labeling tests: the exactly-once check and a LabelConfig for tests."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipelines.label.config import LabelConfig


def input_ids(paths: list[Path], id_column: str = "review_id") -> Counter:
    return Counter(pa.concat_tables([pq.read_table(p, columns=[id_column]) for p in paths])[id_column].to_pylist())


def output_tables(output: Path) -> tuple[pa.Table, pa.Table]:
    """(labeled, rejected) rows of every committed run, as the manifest lists them; fails if `_SUCCESS` is
    missing. The run folders hold exactly the listed files (no debris beside them)."""
    manifest = json.loads((output / "_SUCCESS").read_text())
    for kind, folder in (("labeled", "labels"), ("rejected", "rejected")):
        on_disk = sorted(str(f.relative_to(output)) for f in (output / folder).rglob("*.parquet"))
        assert on_disk == sorted(manifest["files"][kind]), f"{folder}/ holds other files than the manifest lists"
    labeled = [pq.read_table(output / f) for f in manifest["files"]["labeled"]]
    rejected = [pq.read_table(output / f) for f in manifest["files"]["rejected"]]
    return (pa.concat_tables(labeled) if labeled else None, pa.concat_tables(rejected) if rejected else None)


def assert_exactly_once(inputs: list[Path], output: Path, id_column: str = "review_id") -> tuple[pa.Table, pa.Table]:
    """labeled ∪ rejected = input, as multisets of ids; and the labels folder read as a dataset agrees."""
    labeled, rejected = output_tables(output)
    got = Counter(labeled[id_column].to_pylist() if labeled is not None else [])
    got.update(rejected[id_column].to_pylist() if rejected is not None else [])
    expected = input_ids(inputs, id_column)
    assert got == expected, f"missing {expected - got}, extra {got - expected}"
    # a warehouse reading the labels folder sees exactly the labeled rows (one schema: no promotion needed)
    if (output / "labels").exists():
        dataset = pads.dataset(output / "labels", format="parquet")
        assert dataset.count_rows() == (labeled.num_rows if labeled is not None else 0)
    return labeled, rejected


def files_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.parquet"))


def config(model: Path, inputs, output: Path, **overrides) -> LabelConfig:
    values = dict(model=str(model), input=[str(p) for p in (inputs if isinstance(inputs, list) else [inputs])],
                  output=str(output), text_column="text", id_column="review_id", pass_through=["movie_id", "rating"],
                  engine="local", progress=False, threads_per_actor=1)
    values.update(overrides)
    return LabelConfig(**values)


# the console script users run; one torch thread: CI machines are shared and oversubscribed threads crawl
KOBERT = [str(Path(sys.executable).parent / "kobert")]
# partition values a warehouse must read back: Korean, empty, null, and characters Hive escapes
GENRES = ["드라마", "", None, "코미디", "SF/판타지=1%"]


def day(real_table: pa.Table, start: int, rows: int, messy: bool = False) -> pa.Table:
    """A day of reviews with a `genre` column cycling through GENRES; `messy` adds every kind of bad row."""
    from tests.pipelines.label.conftest import messy_rows

    table = real_table.slice(start, rows)
    if messy:
        table = pa.concat_tables([table, messy_rows(real_table)])
    return table.append_column("genre", pa.array([GENRES[i % len(GENRES)] for i in range(table.num_rows)]))


def labelable(*tables: pa.Table) -> Counter:
    """(review_id, genre) of the rows that must be labeled, worked out from the input alone."""
    rows = [row for table in tables for row in table.to_pylist()]
    return Counter((row["review_id"], row["genre"]) for row in rows
                   if row["review_id"] is not None and row["text"] is not None and row["text"].strip())


def as_hive(expected: Counter) -> Counter:
    """`expected` as Hive partition discovery and Delta partition values read it: "" and null both null."""
    return Counter((id_, genre or None) for id_, genre in expected.elements())


def unchecked_strings(values: list[bytes | None], kind: pa.DataType = pa.string()) -> pa.Array:
    """A string array holding `values` as raw bytes, invalid UTF-8 included (as a careless writer leaves them:
    pyarrow validates strings only when asked)."""
    binary = pa.array(values, pa.large_binary() if kind == pa.large_string() else pa.binary())
    return pa.Array.from_buffers(kind, len(binary), binary.buffers(), null_count=binary.null_count)


# invalid UTF-8 as crawls deliver it: stray bytes, a lone surrogate (CESU-8), a cut-off multibyte character
INVALID_UTF8 = [b"\xff\xfe stray bytes", b"\xed\xa0\x80 surrogate", "좋".encode()[:2] + b" cut off"]


def cpu_bf16_units() -> str | None:
    """What /proc/cpuinfo says this CPU has for bf16 (`amx`, `avx512_bf16`), or None: read apart from torch, so
    a test of the path `auto` picks does not ask the code under test."""
    flags = set(open("/proc/cpuinfo").read().split())
    return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else None


def auto_cpu_path() -> dict:
    """The path `kobert label` labels with on this CPU by default (torch; bf16-full on bf16 units, else fp32)."""
    units = cpu_bf16_units()
    why = {"amx": "auto: this CPU has AMX (bf16 tiles)", "avx512_bf16": "auto: this CPU has AVX-512 bf16",
           None: "auto: this CPU has no bf16 units (neither AMX nor AVX-512 bf16), fp32 is PyTorch's fastest exact "
                 "path"}[units]
    return {"runtime": "torch", "device": "cpu", "precision": "bf16-full" if units else "fp32", "why": why,
            "forward_batch_size": 128}
