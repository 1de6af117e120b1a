"""LabelConfig: the knobs users type are parsed and checked before any work starts."""

import pytest

from pipelines.label.config import LabelConfig


def make(**overrides):
    return LabelConfig(**{"model": "m", "input": ["in.parquet"], "output": "out", **overrides})


def test_actors_as_count_or_range():
    assert make(actors="3").actor_range == (3, 3)
    assert make(actors="1,4").actor_range == (1, 4)


@pytest.mark.parametrize("actors", ["0", "4,2", "x", "1,2,3"])
def test_bad_actor_counts_are_refused(actors):
    with pytest.raises(ValueError, match="--actors"):
        make(actors=actors)


def test_columns_are_read_once_each():
    config = make(text_column="body", id_column="id", pass_through=["id", "date"], partition_column="date")
    assert config.columns == ["id", "body", "date"]


@pytest.mark.parametrize("overrides, message", [
    ({"max_length": 1000}, "--max-length"),
    ({"pass_through": ["label"]}, "clash"),
    ({"incremental": True, "overwrite": True}, "exclude"),
    ({"id_column": "text"}, "differ"),
    ({"rows_per_block": -1}, "--rows-per-block"),
    ({"cpus_per_actor": -0.5}, "--cpus-per-actor"),
    ({"pass_through": ["labeled_by"]}, "clash"),
])
def test_inconsistent_options_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_blocks_are_one_actor_call_unless_sized():
    assert make().block_rows == 4096
    assert make(batch_size=1000).block_rows == 1000
    assert make(batch_size=1000, rows_per_block=250).block_rows == 250
