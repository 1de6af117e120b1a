"""Sharded model actors on a real local Ray: blocks of rows whatever the files, every actor a share of the
rows, threads from the CPUs each actor reserves, and the manifest naming who labeled how much.

One module Ray of 4 logical CPUs (more than this 2-core machine has, so that an actor can reserve 3 and
the tasks still get one); the runs join it in-process.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.label.pipeline import run_label
from pipelines.label.read import list_input_files, read_ray
from tests.pipelines.label.helpers import assert_exactly_once, config, files_of

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def six_files(tmp_path_factory, nsmc_path):
    """6 Parquet files of 3,000 real reviews each (one row group per file, ~270 KB): one read task's worth."""
    folder = tmp_path_factory.mktemp("six-files")
    batches = pq.ParquetFile(nsmc_path).iter_batches(batch_size=3000)
    for index in range(6):
        pq.write_table(pa.Table.from_batches([next(batches)]), folder / f"part-{index}.parquet")
    return folder


def test_reader_cuts_blocks_of_rows_whatever_the_files(local_ray, six_files):
    fs, files = list_input_files([str(six_files)])
    bundles = list(read_ray(fs, files, ["review_id", "text"], rows_per_block=1000).iter_internal_ref_bundles())
    rows = [bundle.num_rows() for bundle in bundles]
    assert sum(rows) == 18_000 and max(rows) <= 1000 and len(rows) >= 18


def test_two_actors_each_label_a_share(local_ray, tiny_model_dir, six_files, tmp_path):
    output = tmp_path / "labels"
    result = run_label(config(tiny_model_dir, six_files, output, engine="ray", actors="2", batch_size=1000,
                              max_length=64, threads_per_actor=0))
    labeled, _ = assert_exactly_once(files_of(six_files), output)
    actors = json.loads((output / "_SUCCESS").read_text())["runs"][0]["actors"]
    assert actors == result.manifest["runs"][0]["actors"] and len({a["actor_id"] for a in actors}) == 2
    assert sum(a["rows"] for a in actors) == labeled.num_rows
    assert min(a["rows"] for a in actors) >= labeled.num_rows / 6, actors  # a share, not a leftover block
    # 4 CPUs, 2 actors: 1 each (2 each would leave the read and write tasks none), 1 thread each
    assert [(a["cpus"], a["threads"]) for a in actors] == [(1.0, 1), (1.0, 1)]


def test_actor_threads_are_the_cpus_it_reserves(local_ray, tiny_model_dir, six_files, tmp_path):
    output = tmp_path / "labels"
    files = files_of(six_files)[:1]
    run_label(config(tiny_model_dir, files, output, engine="ray", cpus_per_actor=3, threads_per_actor=0,
                     max_length=64))
    labeled, _ = assert_exactly_once(files, output)
    [actor] = json.loads((output / "_SUCCESS").read_text())["runs"][0]["actors"]
    assert (actor["cpus"], actor["threads"], actor["rows"]) == (3.0, 3, labeled.num_rows)


def test_a_pool_that_cannot_start_fails_in_one_line_and_commits_nothing(local_ray, tiny_model_dir, six_files,
                                                                        tmp_path):
    from pipelines.errors import UserError

    output = tmp_path / "labels"
    # 2 actors of 3 CPUs on a 4-CPU Ray: the second never schedules
    with pytest.raises(UserError, match=r"did not start 2 label actor\(s\) of 3 CPU\(s\) each within "
                                        r"--actor-start-timeout-s 5"):
        run_label(config(tiny_model_dir, files_of(six_files)[:1], output, engine="ray", actors="2",
                         cpus_per_actor=3, actor_start_timeout_s=5, max_length=64))
    assert not (output / "_SUCCESS").exists()
