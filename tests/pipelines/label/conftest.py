"""Fixtures for the labeling tests: real NSMC reviews, a messy file, and the exactly-once check.

The shared `tiny_model_dir`, `nsmc_path` and `tokenizer_dir` fixtures come from tests/conftest.py (they fail
loudly when ../shared is missing).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest



@pytest.fixture(scope="session")
def real_table(nsmc_path) -> pa.Table:
    """1,200 real reviews spread over the whole file (every 500th row), all columns."""
    table = pq.read_table(nsmc_path)
    return table.take(list(range(0, 500 * 1200, 500)))


def messy_rows(real: pa.Table) -> pa.Table:
    """Every kind of text a crawl delivers: nulls, empty and blank strings, 20k characters, emoji, control
    characters, duplicate ids (different text) and exact duplicate rows."""
    first = real.slice(0, 1).to_pylist()[0]
    texts = [None, None, "", "   ", "\t\n ", "재밌다 " * 3000, "가" * 20_000, "최고 😂😂🔥👍 🇰🇷", "\x00\x01\x07 제어문자\x1b[31m",
             "\u200b", "ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ", "1,000,000점 만점에 10점", "<b>html</b> &amp; 'quotes' ``x''", "\ud7a3" * 3]
    rows = []
    for offset, text in enumerate(texts):
        rows.append({**first, "review_id": 9_000_000 + offset, "text": text})
    rows.append({**first, "review_id": 9_000_000, "text": "같은 id, 다른 글"})  # duplicate id
    rows.extend([{**first, "text": "완전 똑같은 행"}] * 3)  # exact duplicate rows (same id too)
    rows.append({**first, "review_id": None, "text": "id 없음"})
    return pa.Table.from_pylist(rows, schema=real.schema)


@pytest.fixture
def messy_input(tmp_path, real_table) -> Path:
    """A folder of two Parquet files: 600 real reviews, then 600 real reviews mixed with the messy rows."""
    folder = tmp_path / "input"
    folder.mkdir()
    pq.write_table(real_table.slice(0, 600), folder / "part-0.parquet")
    pq.write_table(pa.concat_tables([real_table.slice(600, 300), messy_rows(real_table), real_table.slice(900, 300)]),
                   folder / "part-1.parquet", row_group_size=200)
    return folder
