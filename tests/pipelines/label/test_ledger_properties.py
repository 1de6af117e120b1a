"""Property test of the labeling ledger on the local engine: for random rows (null ids and texts, blank and
invalid-UTF-8 texts, duplicate ids and duplicate rows, across files and batch sizes), labeled ∪ rejected =
input as multisets of ids, and the summary's counts agree. Few fixed examples: each is a real run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.label.pipeline import run_label
from tests.pipelines.label.helpers import assert_exactly_once, config, unchecked_strings

TEXT = st.one_of(st.none(), st.sampled_from(["", "  ", "좋아요", "별로", "ㅋ" * 200]),
                 st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")),
                 st.just(b"\xff\xfe bad"))
ROW = st.tuples(st.one_of(st.none(), st.integers(0, 5)), TEXT)


def table(rows: list[tuple]) -> pa.Table:
    texts = [text.encode() if isinstance(text, str) else text for _, text in rows]
    return pa.table({"review_id": pa.array([review_id for review_id, _ in rows], pa.int64()),
                     "text": unchecked_strings(texts, pa.large_string()),
                     "movie_id": pa.array([index % 3 for index in range(len(rows))], pa.int64()),
                     "rating": pa.array([1] * len(rows), pa.int8())})


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=st.lists(st.lists(ROW, min_size=1, max_size=40), min_size=1, max_size=3),
       rows_per_file=st.sampled_from([1, 7, 64]))
def test_labeled_and_rejected_rows_are_the_input_exactly_once(tiny_model_dir, files, rows_per_file):
    with tempfile.TemporaryDirectory(dir=Path(tiny_model_dir).parent) as scratch:
        folder, output = Path(scratch) / "in", Path(scratch) / "labels"
        folder.mkdir()
        for index, rows in enumerate(files):
            pq.write_table(table(rows), folder / f"part-{index}.parquet")
        inputs = sorted(folder.glob("*.parquet"))
        result = run_label(config(tiny_model_dir, [folder], output, rows_per_file=rows_per_file, max_length=32))
        labeled, rejected = assert_exactly_once(inputs, output)
        total = sum(map(len, files))
        assert result.stats.labeled + result.stats.rejected == total
        assert (labeled.num_rows if labeled is not None else 0) == result.stats.labeled
