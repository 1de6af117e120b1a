"""The product on a real multi-node Ray: a head and two worker nodes on 127.0.0.1 (`ray.cluster_utils.Cluster`
under `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), an S3 API on loopback (moto's server), jobs submitted with
`kobert submit` through the head's job API, nothing shared between the jobs but S3.

The nodes' environment is what an operator gives a cluster image: S3 credentials and endpoint, `kobert` on
PATH, an empty `KOBERT_SHARED` (nothing from this repository's ../shared), the hub offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from pipelines.prepare import PrepareConfig, prepare
from tests.cluster.conftest import free_ports

pytestmark = [pytest.mark.ray, pytest.mark.timeout(1500)]
KOBERT = str(Path(sys.executable).with_name("kobert"))

# The walk-through of the README's "Run on a cluster": these very commands, each after `kobert submit --`.
TRAIN = ("train", "--model", "small", "--tokenizer", "s3://team/tokenizers/kobert",
         "--train", "s3://team/data/train.parquet", "--eval", "s3://team/data/eval.parquet",
         "--output", "s3://team/models/nsmc-small", "--num-workers", "2", "--cpus-per-worker", "2",
         "--max-length", "64", "--batch-size", "32", "--epochs", "1", "--max-steps-per-epoch", "8")
EVALUATE = ("evaluate", "--model", "s3://team/models/nsmc-small", "--data", "s3://team/data/test.parquet",
            "--output", "s3://team/models/nsmc-small/test-eval")
# The small model in fp32 on one thread per actor: Ray Data gives each block to the least busy actor, and the
# head's one CPU tokenizes the blocks one at a time, so the actors share them only where labeling a 128-row block
# takes longer than tokenizing the next. The tiny model labeled a block in ~0.07 s, under the head's ~0.1 s a
# block, and one actor took all 1,350 rows in 1 of 6 runs here and in two CI runs (EPYC Zen 4); the small model
# takes ~0.4 s a block against the head's ~0.2 s (median of 40 blocks, same CPU), as a real model's actors do.
LABEL = ("label", "--model", "s3://team/models/nsmc-small", "--engine", "ray", "--actors", "2",
         "--cpus-per-actor", "2", "--threads-per-actor", "1", "--precision", "fp32", "--batch-size", "128",
         "--input", "s3://team/data/train.parquet,s3://team/data/test.parquet", "--id-column", "review_id",
         "--output", "s3://team/labels/nsmc", "--no-progress")


@pytest.fixture(scope="module")
def multinode(tmp_path_factory, nsmc_path, tokenizer_dir):
    """A 3-node Ray on loopback (head: 1 CPU; two workers: 2 CPUs each), its job API, and S3 holding the
    training data and the KoBERT tokenizer."""
    import s3fs
    from moto.server import ThreadedMotoServer
    from ray.cluster_utils import Cluster

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    urllib.request.urlopen(f"http://{host}:{port}/moto-api/reset", data=b"")  # moto keeps buckets per process
    root = tmp_path_factory.mktemp("multinode")
    (root / "empty-shared").mkdir()
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
           "KOBERT_SHARED": str(root / "empty-shared"), "KOBERT_CACHE": str(root / "node-cache"),
           "HF_HUB_OFFLINE": "1",
           "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "1"}  # on, as on a real cluster (conftest turns it off)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the nodes (and so every job and worker) inherit the environment they start in
    cluster = None
    try:
        s3 = s3fs.S3FileSystem(skip_instance_cache=True)
        s3.mkdir("team")
        # the README's `kobert prepare nsmc --input … --output s3://team/data --sample 1500`
        prepare(PrepareConfig(input=str(nsmc_path), output="s3://team/data", scheme="binary", sample=1500))
        for path in Path(tokenizer_dir).iterdir():
            s3.put_file(str(path), f"team/tokenizers/kobert/{path.name}")
        cluster = Cluster(initialize_head=True, head_node_args={
            "node_ip_address": "127.0.0.1", "num_cpus": 1, "include_dashboard": True, "dashboard_host": "127.0.0.1",
            # not 8265 nor the agent's 52365 (the job API's backend): another test's Ray may hold them
            **dict(zip(("dashboard_port", "dashboard_agent_listen_port"), free_ports(2))),
            "object_store_memory": 200 * 1024 * 1024})
        workers = [add_worker(cluster) for _ in range(2)]
        cluster.wait_for_nodes()
        address = cluster.webui_url if "://" in cluster.webui_url else f"http://{cluster.webui_url}"
        yield SimpleNamespace(cluster=cluster, workers=workers, address=address, s3=s3, env={**os.environ},
                              cwd=root)
    finally:
        if cluster is not None:
            cluster.shutdown()
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def add_worker(cluster):
    """A worker node of 2 CPUs on 127.0.0.1."""
    return cluster.add_node(node_ip_address="127.0.0.1", num_cpus=2, object_store_memory=200 * 1024 * 1024)


def start(multinode, *command: str) -> subprocess.Popen:
    """`kobert submit -- kobert …` from a folder outside the checkout, following the job's logs."""
    return subprocess.Popen([KOBERT, "submit", "--address", multinode.address, "--submission-id",
                             f"test-{uuid.uuid4().hex[:8]}", "--", "kobert", *command],
                            cwd=multinode.cwd, env=multinode.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(job: subprocess.Popen) -> subprocess.CompletedProcess:
    """Wait for a started submission; its exit status is the job's own."""
    stdout, stderr = job.communicate(timeout=1200)
    return subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr)


def submit(multinode, *command: str) -> subprocess.CompletedProcess:
    return finish(start(multinode, *command))


def wait_for(condition, job: subprocess.Popen, what: str, timeout_s: float = 600):
    """Poll `condition()` until it returns something true; fail if the job ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if job.poll() is not None:
            pytest.fail(f"the job ended before {what}: {finish(job).stdout[-3000:]}")
        time.sleep(0.3)
    job.kill()
    pytest.fail(f"no {what} within {timeout_s:g} s")


def kill_worker_node(multinode, index: int) -> str:
    """SIGKILL a worker node's raylet and its workers (no graceful exit), then start a fresh node of the same
    size, as a cluster replaces a lost machine. Returns the killed node's id."""
    node = multinode.workers[index]
    killed = node.node_id
    multinode.cluster.remove_node(node, allow_graceful=False)
    multinode.workers[index] = add_worker(multinode.cluster)
    return killed


def read_json(s3, path: str) -> dict:
    return json.loads(s3.cat_file(path).decode("utf-8"))


def test_train_evaluate_and_label_across_nodes_through_object_storage(multinode):
    s3 = multinode.s3
    trained = submit(multinode, *TRAIN)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    metrics = read_json(s3, "team/models/nsmc-small/metrics.json")
    nodes = metrics["best"]["nodes"]
    assert len(nodes) == 2 and nodes[0] != nodes[1]  # the two ranks ran on different nodes
    assert metrics["best"]["threads"] == [2, 2]  # torch threads = the CPUs each rank holds on its node
    assert metrics["best"]["global_step"] == 8
    assert s3.glob("team/models/nsmc-small/checkpoints/*/checkpoint_epoch001_*")

    evaluated = submit(multinode, *EVALUATE)
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-3000:]
    evaluation = read_json(s3, "team/models/nsmc-small/test-eval/metrics.json")
    with s3.open("team/data/test.parquet", "rb") as handle:
        test_rows = pq.ParquetFile(handle).metadata.num_rows
    assert evaluation["n"] + evaluation["skipped_empty_text"] == test_rows

    labeled = submit(multinode, *LABEL)
    assert labeled.returncode == 0, labeled.stdout[-3000:] + labeled.stderr[-3000:]
    manifest = read_json(s3, "team/labels/nsmc/_SUCCESS")
    digest = manifest["model"]["pinned"].split("#sha256=")[1]
    assert manifest["model"]["pinned"].startswith("s3://team/models/nsmc-small#sha256=") and len(digest) == 64
    run = manifest["runs"][-1]
    with s3.open("team/data/train.parquet", "rb") as handle:
        train_rows = pq.ParquetFile(handle).metadata.num_rows
    assert run["rows"]["read"] == train_rows + test_rows
    assert run["rows"]["labeled"] + run["rows"]["rejected"] == run["rows"]["read"]
    actors = run["actors"]  # 2 CPUs each: one actor per worker node, each labeling a share of ~11 batches
    assert len({actor["node_id"] for actor in actors}) == 2 and all(actor["rows"] > 0 for actor in actors), (
        actors, labeled.stdout[-3000:])
    assert sum(actor["rows"] for actor in actors) == run["rows"]["labeled"]
    ids = []
    for path in s3.glob(f"team/labels/nsmc/labels/run_id={run['run_id']}/**/*.parquet"):
        with s3.open(path, "rb") as handle:
            ids += pq.read_table(handle, columns=["review_id"]).column("review_id").to_pylist()
    assert len(ids) == len(set(ids)) == run["rows"]["labeled"]  # every labeled row exactly once


def test_a_node_local_output_on_a_multi_node_cluster_is_refused_before_any_work(multinode):
    local = multinode.cwd / "local-model"
    refused = submit(multinode, "train", "--model", "tiny", "--tokenizer", "s3://team/tokenizers/kobert",
                     "--train", "s3://team/data/train.parquet", "--eval", "s3://team/data/eval.parquet",
                     "--output", str(local), "--num-workers", "2", "--epochs", "1", "--max-steps-per-epoch", "2")
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert f"--output {local} is a local path, but this Ray cluster has 3 nodes" in refused.stdout + refused.stderr
    assert not local.exists()


def test_training_survives_a_lost_node_from_its_checkpoint_in_object_storage(multinode):
    s3, output = multinode.s3, "team/models/loss-small"
    job = start(multinode, "train", "--model", "small", "--tokenizer", "s3://team/tokenizers/kobert",
                "--train", "s3://team/data/train.parquet", "--eval", "s3://team/data/eval.parquet",
                "--output", f"s3://{output}", "--num-workers", "2", "--cpus-per-worker", "2", "--max-length", "64",
                "--batch-size", "16", "--epochs", "1", "--checkpoint-every-steps", "10", "--max-failures", "2")

    def committed_mid_epoch_checkpoint() -> bool:
        s3.invalidate_cache()
        snapshots = s3.glob(f"{output}/checkpoints/*/checkpoint_manager_snapshot.json")
        return bool(snapshots) and b"checkpoint_epoch001_step" in s3.cat_file(snapshots[0])

    wait_for(committed_mid_epoch_checkpoint, job, "a mid-epoch checkpoint in S3")
    assert job.poll() is None
    kill_worker_node(multinode, 0)
    trained = finish(job)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    (entry,) = read_json(s3, f"{output}/metrics.json")["history"]
    with s3.open("team/data/train.parquet", "rb") as handle:
        rows = pq.ParquetFile(handle).metadata.num_rows
    steps = -(-(rows // 2) // 16)  # what an undisturbed run of 2 ranks takes
    assert entry["global_step"] == steps
    # restarted from a mid-epoch checkpoint in S3, not from scratch; the new rank ran on the fresh node
    assert 0 < entry["resumed_from_step"] < steps and entry["resumed_from_step"] % 10 == 0
    assert multinode.workers[0].node_id in entry["nodes"]


def test_labeling_survives_a_lost_node_exactly_once(multinode, nsmc_path, tokenizer_dir):
    from pipelines.init_model import InitModelConfig, init_model

    s3 = multinode.s3
    reviews = pq.read_table(nsmc_path, columns=["review_id", "text"]).slice(0, 8_000)
    with s3.open("team/corpus/reviews-8k.parquet", "wb") as handle:
        pq.write_table(reviews, handle)
    model = multinode.cwd / "small-model"  # random weights: labeling time, not quality, matters here
    init_model(InitModelConfig(output=str(model), preset="small", tokenizer=str(tokenizer_dir)))
    s3.put(str(model), "team/models/random-small", recursive=True)
    output = "team/labels/loss"
    job = start(multinode, "label", "--model", "s3://team/models/random-small", "--engine", "ray",
                "--actors", "2", "--cpus-per-actor", "2", "--batch-size", "128", "--rows-per-file", "128",
                "--input", "s3://team/corpus/reviews-8k.parquet", "--id-column", "review_id",
                "--output", f"s3://{output}", "--no-progress")

    doomed = multinode.workers[1].node_id

    def doomed_node_labeled_and_batches_staged() -> bool:
        """The node about to be lost has labeled two blocks (the first one's rows then long written: they must
        survive the loss), and batches are staged. Which actor gets a block is Ray Data's choice: a count of
        staged batches alone risked losing a node whose actor had labeled nothing yet, with no rows to keep."""
        from ray.util.state import list_tasks

        finished = list_tasks(address=multinode.address, limit=10_000, raise_on_missing_output=False,
                              filters=[("node_id", "=", doomed), ("state", "=", "FINISHED")])
        if sum(task.name == "MapWorker(MapBatches(LabelPredictor)).submit" for task in finished) < 2:
            return False  # (not the actor's start-up calls: `__init__`, `get_location`)
        s3.invalidate_cache()
        return len(s3.glob(f"{output}/_staging/*/labeled/*.parquet")) >= 4

    wait_for(doomed_node_labeled_and_batches_staged, job, "two blocks labeled on the node to be lost, batches staged")
    assert job.poll() is None and not s3.exists(f"{output}/_SUCCESS")  # the node dies mid-run
    killed = kill_worker_node(multinode, 1)
    labeled = finish(job)
    assert labeled.returncode == 0, labeled.stdout[-3000:] + labeled.stderr[-3000:]
    run = read_json(s3, f"{output}/_SUCCESS")["runs"][-1]
    assert run["rows"]["read"] == reviews.num_rows
    assert run["rows"]["labeled"] + run["rows"]["rejected"] == reviews.num_rows
    assert killed in {actor["node_id"] for actor in run["actors"]}  # the lost node had labeled some rows
    ids = []
    for path in s3.glob(f"{output}/labels/run_id={run['run_id']}/**/*.parquet"):
        with s3.open(path, "rb") as handle:
            ids += pq.read_table(handle, columns=["review_id"]).column("review_id").to_pylist()
    assert len(ids) == len(set(ids)) == run["rows"]["labeled"]  # nothing lost, nothing twice


def test_the_readme_walks_through_the_commands_this_module_runs():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run on a cluster", 1)[1].split("\n## ", 1)[0]
    commands = " ".join(section.replace("\\\n", " ").split())
    for command in (TRAIN, EVALUATE, LABEL):
        assert "kobert submit -- kobert " + " ".join(command) in commands
    assert "kobert prepare nsmc --input ../shared/data/nsmc/reviews.parquet --output s3://team/data " \
           "--sample 1500" in commands
