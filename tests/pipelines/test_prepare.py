"""`kobert prepare nsmc` on real reviews: the NSMC rule, no empty or duplicate text, balanced seeded splits."""

import json

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.prepare import PrepareConfig, prepare


def _splits(directory):
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in ("train", "eval", "test")}


@pytest.fixture(scope="module")
def binary(tmp_path_factory, nsmc_path):
    output = tmp_path_factory.mktemp("prepare") / "binary"
    summary = prepare(PrepareConfig(input=str(nsmc_path), output=str(output), limit=40000))
    return output, summary


def test_nsmc_rule_and_clean_text(binary):
    output, _ = binary
    rows = pd.concat(_splits(output).values())
    assert set(rows["label"]) == {0, 1}
    assert rows.loc[rows["label"] == 0, "rating"].between(1, 4).all()
    assert rows.loc[rows["label"] == 1, "rating"].between(9, 10).all()
    assert not rows["rating"].between(5, 8).any()
    assert (rows["text"].str.strip() != "").all() and rows["text"].notna().all()
    assert not rows["text"].duplicated().any()  # no exact duplicate, hence no text shared by two splits
    assert dict(zip(rows["label"], rows["label_name"])) == {0: "부정", 1: "긍정"}
    assert rows["label"].dtype == "int64"


def test_balanced_split_sizes_and_summary_accounting(binary):
    output, summary = binary
    splits = _splits(output)
    for name, frame in splits.items():
        counts = frame["label"].value_counts()
        assert counts[0] == counts[1], name
    kept = sum(len(frame) for frame in splits.values())
    assert summary["input_rows"] == 40000
    assert summary["input_rows"] - sum(summary["dropped"].values()) == kept == summary["kept_rows"]
    assert summary["dropped"]["rating_left_out_by_scheme"] > 0
    assert len(splits["eval"]) == pytest.approx(0.1 * kept, abs=2)
    assert json.loads((output / "labels.json").read_text())["labels"] == ["부정", "긍정"]
    assert json.loads((output / "summary.json").read_text())["dropped"] == summary["dropped"]


def test_same_seed_same_split_other_seed_other_split(binary, nsmc_path, tmp_path):
    output, _ = binary
    again = prepare(PrepareConfig(input=str(nsmc_path), output=str(tmp_path / "again"), limit=40000))
    other = prepare(PrepareConfig(input=str(nsmc_path), output=str(tmp_path / "other"), limit=40000, seed=1))
    assert again["splits"] == other["splits"]
    first, repeated, reseeded = _splits(output), _splits(tmp_path / "again"), _splits(tmp_path / "other")
    assert first["test"]["text"].tolist() == repeated["test"]["text"].tolist()
    assert set(first["test"]["text"]) != set(reseeded["test"]["text"])


def test_ternary_scheme_and_sample_through_the_cli(nsmc_path, tmp_path, capsys):
    output = tmp_path / "ternary"
    code = main(["prepare", "nsmc", "--input", str(nsmc_path), "--output", str(output), "--scheme", "ternary",
                 "--limit", "40000", "--sample", "900"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = pd.concat(_splits(output).values())
    assert len(rows) == 900 and summary["kept_rows"] == 900
    assert rows["label"].value_counts().to_dict() == {0: 300, 1: 300, 2: 300}
    assert rows.loc[rows["label"] == 1, "rating"].between(5, 8).all()
    assert summary["labels"] == ["부정", "중립", "긍정"]


def test_missing_column_is_named(tmp_path):
    pd.DataFrame({"review": ["좋아요"], "rating": [10]}).to_parquet(tmp_path / "raw.parquet")
    with pytest.raises(ValueError, match="text"):
        prepare(PrepareConfig(input=str(tmp_path / "raw.parquet"), output=str(tmp_path / "out")))


def test_splits_go_to_object_storage(nsmc_path, s3_env, monkeypatch, tmp_path):
    """`--output s3://…` (the README's cluster walk-through): the splits land in the bucket, nothing locally."""
    import s3fs

    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("prepared")
    summary = prepare(PrepareConfig(input=str(nsmc_path), output="s3://prepared/nsmc", sample=600))
    with fs.open("prepared/nsmc/train.parquet", "rb") as handle:
        train = pd.read_parquet(handle)
    assert len(train) == summary["splits"]["train"]["긍정"] + summary["splits"]["train"]["부정"]
    assert json.loads(fs.cat_file("prepared/nsmc/labels.json"))["labels"] == summary["labels"]
    assert sorted(name.rsplit("/", 1)[1] for name in fs.ls("prepared/nsmc")) == [
        "eval.parquet", "labels.json", "summary.json", "test.parquet", "train.parquet"]
    assert not list(tmp_path.iterdir())  # no local folder named "s3:"
