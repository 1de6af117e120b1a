"""Read stage: folders, globs and lists resolve to the same sorted files; missing paths are named."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import UserError
from pipelines.label.read import list_input_files, read_local


@pytest.fixture
def folder(tmp_path):
    for name in ["b.parquet", "a.parquet", "sub/c.parquet"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        pq.write_table(pa.table({"review_id": [1, 2], "text": ["x", "y"]}), tmp_path / name)
    (tmp_path / "_SUCCESS").write_text("{}")
    (tmp_path / "_staging").mkdir()
    pq.write_table(pa.table({"review_id": [1], "text": ["x"]}), tmp_path / "_staging" / "d.parquet")
    (tmp_path / ".hidden.parquet").write_text("")
    return tmp_path


def names(files):
    return [f.path.rsplit("/", 1)[-1] for f in files]


def test_folder_glob_and_list(folder):
    assert names(list_input_files([str(folder)])[1]) == ["a.parquet", "b.parquet", "c.parquet"]
    assert names(list_input_files([f"{folder}/*.parquet"])[1]) == ["a.parquet", "b.parquet"]
    listed = list_input_files([str(folder / "b.parquet"), str(folder / "a.parquet"), str(folder / "a.parquet")])[1]
    assert names(listed) == ["a.parquet", "b.parquet"]
    assert all(f.size > 0 and f.modified for f in listed)


def test_missing_input_is_named(tmp_path):
    with pytest.raises(UserError, match="input not found: .*nope.parquet"):
        list_input_files([str(tmp_path / "nope.parquet")])
    with pytest.raises(UserError, match="matches no file"):
        list_input_files([str(tmp_path / "*.parquet")])


def test_local_reader_streams_every_row(folder):
    fs, files = list_input_files([str(folder)])
    batches = list(read_local(fs, files, ["review_id", "text"], batch_size=1))
    assert len(batches) == 6 and all(b.num_rows == 1 for b in batches)


def test_a_corrupt_data_page_is_bad_input_naming_the_file(tmp_path):
    """A torn copy (footer fine, a page not) used to be a RuntimeError: `kobert label` exited 1, not 2."""
    from pipelines.label.read import CorruptInputError, corrupt_input, read_local
    from tests.pipelines.label.test_cli import corrupt_page_file

    texts = [f"리뷰 {index} " * 20 for index in range(2000)]
    corrupt_page_file(pa.table({"review_id": list(range(2000)), "text": texts}), tmp_path / "torn.parquet")
    fs, files = list_input_files([str(tmp_path)])
    with pytest.raises(CorruptInputError, match=r"input \S+torn.parquet has a corrupt data page") as caught:
        list(read_local(fs, files, ["review_id", "text"], batch_size=500))
    assert isinstance(caught.value, UserError)
    wrapped = RuntimeError("in a Ray task")
    wrapped.__cause__ = caught.value
    assert corrupt_input(wrapped) is caught.value and corrupt_input(RuntimeError("other")) is None
