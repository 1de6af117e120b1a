"""`kobert label` as users run it: a real process, a real local Ray, real reviews, messy rows, S3.

Ray-starting tests are marked `ray`; the bad-input tests fail before Ray starts, as they should.
"""

import json
import os
import re
import subprocess
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.pipelines.label.helpers import INVALID_UTF8, KOBERT, assert_exactly_once, files_of, unchecked_strings

RAY_ENV = {"RAY_ADDRESS": "", "RAY_DEDUP_LOGS": "0", "TOKENIZERS_PARALLELISM": "false"}


def kobert_label(model, inputs, output, *extra, env=None, timeout=240):
    command = [*KOBERT, "label", "--model", str(model), "--input", ",".join(map(str, inputs)), "--output",
               str(output), "--text-column", "text", "--id-column", "review_id", "--threads-per-actor", "1", *extra]
    environment = {**os.environ, **RAY_ENV, **(env or {})}
    environment.pop("RAY_ADDRESS")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)


@pytest.mark.ray
def test_ray_pipeline_labels_messy_reviews_exactly_once(tiny_model_dir, messy_input, tmp_path):
    output = tmp_path / "labels"
    result = kobert_label(tiny_model_dir, [messy_input], output, "--engine", "ray", "--batch-size", "256",
                          "--rows-per-file", "400", "--pass-through", "movie_id,rating,date",
                          "--partition-column", "rating", "--max-length", "64")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "labeled " in result.stdout and "rejected    6 rows" in result.stdout, result.stdout
    console = result.stdout + result.stderr  # our progress lines and summary, none of Ray Data's chatter
    assert re.search(r"^label: 100% 1219/1219 ", console, re.M) and not re.search(
        r"logging_progress|Running Dataset|execution finished|core_worker|raylet", console), console[-3000:]
    labeled, rejected = assert_exactly_once(files_of(messy_input), output)
    assert {p.name.split("=")[0] for p in next((output / "labels").glob("run_id=*")).iterdir()} == {"rating"}
    manifest = json.loads((output / "_SUCCESS").read_text())
    assert manifest["runs"][0]["engine"] == "ray" and manifest["rows"]["read"] == labeled.num_rows + rejected.num_rows


@pytest.mark.ray
def test_two_actors_on_the_machines_own_ray_each_label_a_share(tiny_model_dir, real_table, tmp_path):
    """`--actors 2` on the command's own local Ray (2 cores here): it used to hang (each actor held a whole
    CPU, the read task got none); now the tasks keep a CPU, the actors' threads take the cores, and each
    actor labels a share."""
    source, output = tmp_path / "in", tmp_path / "labels"
    source.mkdir()
    for index in range(6):
        pq.write_table(real_table.slice(200 * index, 200), source / f"part-{index}.parquet")
    result = kobert_label(tiny_model_dir, [source], output, "--engine", "ray", "--actors", "2", "--batch-size", "100",
                          "--max-length", "64", "--threads-per-actor", "0", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    labeled, _ = assert_exactly_once(files_of(source), output)
    actors = json.loads((output / "_SUCCESS").read_text())["runs"][0]["actors"]
    assert len({a["actor_id"] for a in actors}) == 2 and sum(a["rows"] for a in actors) == labeled.num_rows
    assert min(a["rows"] for a in actors) >= labeled.num_rows / 6, actors
    assert all(a["threads"] == max(1, int(a["cpus"])) for a in actors), actors
    assert sum(a["cpus"] for a in actors) == max(1, os.cpu_count() // 2) * 2, actors  # 1 + 1 on 2 cores


def test_incremental_cli_run_twice_over_a_growing_input(tiny_model_dir, real_table, tmp_path):
    source, output = tmp_path / "in", tmp_path / "labels"
    source.mkdir()
    pq.write_table(real_table.slice(0, 200), source / "2026-01-01.parquet")
    delta = ["--delta-table", str(tmp_path / "delta")]
    first = kobert_label(tiny_model_dir, [source], output, "--incremental", "--engine", "local", *delta)
    pq.write_table(real_table.slice(200, 100), source / "2026-01-02.parquet")
    second = kobert_label(tiny_model_dir, [source], output, "--incremental", "--engine", "local", *delta)
    assert first.returncode == second.returncode == 0, second.stderr[-2000:]
    assert "labeled 200 of 200" in first.stdout and "labeled 100 of 100" in second.stdout
    assert "appended 200 rows" in first.stdout and "appended 100 rows" in second.stdout, second.stdout
    assert_exactly_once(files_of(source), output)


@pytest.mark.parametrize("problem, message", [
    ("missing", "input not found: .*nowhere.parquet"),
    ("no_text", "has no column 'text'"),
    ("int_text", "text column 'text' .* is int64, not a string"),
    ("corrupt", "broken.parquet is not a readable Parquet file"),
])
def test_bad_input_fails_fast_and_commits_nothing(tiny_model_dir, tmp_path, problem, message):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"review_id": [1, 2], "text": ["좋다", "싫다"]}), folder / "good.parquet")
    inputs = [folder]
    if problem == "missing":
        inputs = [folder / "good.parquet", tmp_path / "nowhere.parquet"]
    elif problem == "no_text":
        pq.write_table(pa.table({"review_id": [3], "body": ["x"]}), folder / "other.parquet")
    elif problem == "int_text":
        pq.write_table(pa.table({"review_id": [3], "text": [7]}), folder / "other.parquet")
    else:
        (folder / "broken.parquet").write_bytes(b"PAR1" + os.urandom(64) + b"PAR1")
    result = kobert_label(tiny_model_dir, inputs, tmp_path / "labels", "--engine", "ray")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "labels" / "_SUCCESS").exists()


@pytest.fixture
def s3_server():
    """An S3 API served by moto on 127.0.0.1 (a real HTTP server: the CLI subprocess and Ray workers use it)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    yield env
    server.stop()


@pytest.mark.ray
def test_reads_and_writes_through_s3(tiny_model_dir, real_table, s3_server, tmp_path, monkeypatch):
    import s3fs

    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    s3 = s3fs.S3FileSystem(skip_instance_cache=True)
    s3.mkdir("reviews")
    local = tmp_path / "in"
    local.mkdir()
    for day, rows in enumerate([real_table.slice(0, 250), real_table.slice(250, 150)]):
        pq.write_table(rows, local / f"day-{day}.parquet")
        s3.put_file(str(local / f"day-{day}.parquet"), f"reviews/in/day-{day}.parquet")
    # (no AWS_ALLOW_HTTP: kobert allows deltalake the plain-HTTP endpoint AWS_ENDPOINT_URL names)
    result = kobert_label(tiny_model_dir, ["s3://reviews/in/"], "s3://reviews/labels", "--engine", "ray",
                          "--delta-table", "s3://reviews/labels-delta", env=s3_server)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "delta table s3://reviews/labels-delta: appended 400 rows" in result.stdout, result.stdout
    # (deltalake would deadlock against the in-process moto server: read its log as plain JSON instead)
    commit = s3.cat_file("reviews/labels-delta/_delta_log/00000000000000000000.json").decode()
    assert '"kobert.run_id"' in commit and commit.count('"add"') >= 1
    # OUTPUT/labels is a Delta table of the run's own files: one commit, the manifest's files, app transaction 1
    manifest = json.loads(s3.cat_file("reviews/labels/_SUCCESS"))
    actions = [json.loads(line) for line in s3.cat_file("reviews/labels/labels/_delta_log/00000000000000000000.json")
               .decode().splitlines()]
    added = sorted(f"labels/{unquote(a['add']['path'])}" for a in actions if "add" in a)
    assert added == sorted(manifest["files"]["labeled"]) and added
    assert {"txn": {"appId": "kobert-label", "version": 1}} in actions
    assert s3.ls("reviews/labels/labels/_delta_log") == ["reviews/labels/labels/_delta_log/00000000000000000000.json"]
    s3.get("reviews/labels", str(tmp_path / "labels"), recursive=True)
    assert_exactly_once(files_of(local), tmp_path / "labels")
    manifest = json.loads((tmp_path / "labels" / "_SUCCESS").read_text())
    assert [f["path"] for f in manifest["input_files"]] == ["s3://reviews/in/day-0.parquet",
                                                             "s3://reviews/in/day-1.parquet"]
    assert all(f["etag"] for f in manifest["input_files"])


def corrupt_page_file(source: pa.Table, path) -> None:
    """A file whose footer reads fine but whose data pages do not (as after a torn copy)."""
    pq.write_table(source, path, compression="snappy")
    data = bytearray(path.read_bytes())
    for index in range(len(data) // 3, len(data) // 3 + 2000):
        data[index] = (data[index] * 7 + 13) % 256
    path.write_bytes(bytes(data))


RAY_INTERNALS = ("Traceback", "streaming_executor", "exceptions.py", "logging_progress", "ray.exceptions")


@pytest.mark.parametrize("engine", ["local", pytest.param("ray", marks=pytest.mark.ray)])
def test_corrupt_data_page_is_one_line_exit_2_and_the_earlier_output_untouched(tiny_model_dir, real_table, tmp_path,
                                                                               engine):
    """A torn file (valid footer, corrupt page) is bad input: exit 2 and one line naming the file and what to do,
    on both engines. It used to exit 1, and on the ray engine ~190 lines of Ray Data's error log (three
    tracebacks) came first; those details now go to Ray Data's log file, which the line names."""
    folder, output = tmp_path / "in", tmp_path / "labels"
    folder.mkdir()
    pq.write_table(real_table.slice(0, 100), folder / "good.parquet")
    first = kobert_label(tiny_model_dir, [folder], output, "--engine", "local")
    assert first.returncode == 0, first.stderr[-2000:]
    before = {path: path.read_bytes() for path in output.rglob("*") if path.is_file()}
    corrupt_page_file(real_table.select(["review_id", "text"]), folder / "torn.parquet")
    result = kobert_label(tiny_model_dir, [folder], output, "--engine", engine, "--incremental")
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"kobert label: error: input \S*torn.parquet has a corrupt data page \(.*Corrupt.*\); "
                    r"copy the file again, or move it out of the input", last), last
    assert not any(marker in result.stderr for marker in RAY_INTERNALS), result.stderr[-3000:]
    if engine == "ray":
        log_file = re.search(r"details in (\S+ray-data\.log)", last).group(1)
        assert "Corrupt snappy" in open(log_file).read()  # Ray Data's error log went to the file it names
    assert {path: path.read_bytes() for path in output.rglob("*") if path.is_file()} == before


def invalid_utf8_file(real: pa.Table, path) -> int:
    """200 real reviews, then rows with invalid UTF-8 in the text or in the `author` pass-through column, in
    one file as a careless writer leaves it (pyarrow writes strings without checking them); how many."""
    rows = real.slice(0, 200).select(["review_id", "text", "author"])
    texts = [*INVALID_UTF8, "멀쩡한 글".encode(), "멀쩡한 글".encode()]
    authors = [b"a", b"b", b"c", b"\xff\xfe", b"\xed\xb0\x80"]
    bad = pa.table({"review_id": pa.array(range(8_000_000, 8_000_005), pa.int64()),
                    "text": unchecked_strings(texts, pa.large_string()),
                    "author": unchecked_strings(authors, pa.large_string())})
    pq.write_table(pa.concat_tables([rows.slice(0, 100), bad, rows.slice(100)]), path)
    return len(texts)


@pytest.mark.parametrize("engine", ["local", pytest.param("ray", marks=pytest.mark.ray)])
def test_invalid_utf8_rows_are_rejected_and_the_rest_labeled_once(tiny_model_dir, real_table, tmp_path, engine):
    """Used to stop the whole job with "Invalid UTF8 sequence in input", naming neither file nor row."""
    folder, output = tmp_path / "in", tmp_path / "labels"
    folder.mkdir()
    bad_rows = invalid_utf8_file(real_table, folder / "crawl.parquet")
    result = kobert_label(tiny_model_dir, [folder], output, "--engine", engine, "--pass-through", "author")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"rejected    {bad_rows} rows (invalid_utf8 {bad_rows})" in result.stdout, result.stdout
    labeled, rejected = assert_exactly_once(files_of(folder), output)
    assert set(rejected["review_id"].to_pylist()) == set(range(8_000_000, 8_000_005))
    labeled.validate(full=True)
    rejected.validate(full=True)  # the bad bytes are U+FFFD in `rejected/`: any reader can read it
    assert "\ufffd\ufffd" in rejected["author"].to_pylist()[3]
    assert json.loads((output / "_SUCCESS").read_text())["runs"][0]["reject_reasons"] == {"invalid_utf8": bad_rows}


@pytest.mark.ray
def test_ray_pipeline_labels_with_an_electra_classifier_beyond_int16(electra_classifier_dir, messy_input, tmp_path):
    """ELECTRA's 36,000-id vocabulary through Ray Data's object store (list<int32> ids): every row once, label
    names from the model's config, the same labels as the in-process predictor."""
    from kobert_ops.predictor import Predictor

    output = tmp_path / "labels"
    result = kobert_label(electra_classifier_dir, [messy_input], output, "--engine", "ray", "--batch-size", "256",
                          "--max-length", "64", "--precision", "fp32")
    assert result.returncode == 0, result.stderr[-3000:]
    labeled, rejected = assert_exactly_once(files_of(messy_input), output)
    assert set(labeled["label_name"].to_pylist()) <= {"나쁨", "좋음"} and rejected.num_rows == 6
    ids = labeled["review_id"].to_pylist()
    source = pa.concat_tables([pq.read_table(f, columns=["review_id", "text"]) for f in files_of(messy_input)])
    text_of = dict(zip(source["review_id"].to_pylist(), source["text"].to_pylist()))
    unique = [i for i in ids if ids.count(i) == 1][:200]  # duplicate ids carry different texts
    texts = [text_of[i] for i in unique]
    expected = Predictor(electra_classifier_dir, device="cpu", precision="fp32", max_length=64).predict(texts)
    got = dict(zip(ids, labeled["label_name"].to_pylist()))
    assert [got[i] for i in unique] == expected.label_name


def test_local_cli_labels_with_a_roberta_classifier_by_hub_id(offline_hub, real_table, tmp_path):
    from tests.hub_models import HUB_IDS

    source, output = tmp_path / "in", tmp_path / "labels"
    source.mkdir()
    pq.write_table(real_table.slice(0, 300), source / "part-0.parquet")
    result = kobert_label(HUB_IDS["roberta_classifier"], [source], output, "--engine", "local", env=offline_hub)
    assert result.returncode == 0, result.stderr[-3000:]
    labeled, _ = assert_exactly_once(files_of(source), output)
    assert labeled.num_rows == 300 and set(labeled["label_name"].to_pylist()) <= {"부정", "긍정"}
    manifest = json.loads((output / "_SUCCESS").read_text())
    assert manifest["model"]["labels"] == ["부정", "긍정"] and manifest["model"]["path"] == HUB_IDS["roberta_classifier"]


def test_a_schema_change_between_runs_is_refused_in_one_line_and_the_table_kept(tiny_model_dir, real_table,
                                                                               tmp_path):
    """Before layout 2 each file took its input's types: the second run wrote `rating` as a string beside
    int8 files, and Polars/pyarrow could no longer read the folder as one table."""
    source, output = tmp_path / "in", tmp_path / "labels"
    source.mkdir()
    day1 = real_table.slice(0, 100)
    day1 = day1.set_column(day1.schema.get_field_index("rating"), "rating", day1["rating"].cast(pa.int64()))
    pq.write_table(day1, source / "day-1.parquet")
    first = kobert_label(tiny_model_dir, [source], output, "--incremental", "--pass-through", "rating",
                         "--engine", "local")
    assert first.returncode == 0, first.stderr[-2000:]
    before = (output / "_SUCCESS").read_text()
    day2 = real_table.slice(100, 100)
    day2 = day2.set_column(day2.schema.get_field_index("rating"), "rating", day2["rating"].cast(pa.string()))
    pq.write_table(day2, source / "day-2.parquet")
    refused = kobert_label(tiny_model_dir, [source], output, "--incremental", "--pass-through", "rating",
                           "--engine", "local")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert "input column 'rating' is now string" in line and "int64" in line, line
    assert (output / "_SUCCESS").read_text() == before and len(list((output / "labels").glob("run_id=*"))) == 1
    # a narrower integer is cast to the recorded type: the table keeps one schema
    (source / "day-2.parquet").unlink()
    pq.write_table(real_table.slice(100, 100).drop_columns(["rating"]).append_column(
        "rating", real_table.slice(100, 100)["rating"].cast(pa.int8())), source / "day-3.parquet")
    widened = kobert_label(tiny_model_dir, [source], output, "--incremental", "--pass-through", "rating",
                           "--engine", "local")
    assert widened.returncode == 0, widened.stderr[-2000:]
    labeled, _ = assert_exactly_once(files_of(source), output)
    assert labeled.schema.field("rating").type == pa.int64()  # the day-3 file's int8 was cast
