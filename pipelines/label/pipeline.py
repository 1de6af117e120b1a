"""A labeling run, top to bottom: list and check inputs → read → validate → tokenize → predict → write →
commit. The stages are the same functions on either engine:

- `ray`: a streaming Ray Data pipeline (CPU tasks for validate/tokenize/write, an actor pool for predict);
  blocks flow through with backpressure, so memory stays bounded whatever the corpus size.
- `local`: the stages called in this process on record batches of one file at a time; for small inputs
  Ray's start-up (seconds) would cost more than the labeling.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kobert_ops.label_report import ReportProcess
from pipelines import console
from pipelines.core import ray_defaults
from pipelines.errors import UserError
from pipelines.label import schema as table_schema
from pipelines.label.config import LabelConfig
from pipelines.label.delta_labels import delta_schema, labels_table_step
from pipelines.label.identity import new_files, with_digests
from pipelines.label.lease import Lease
from pipelines.label.manifest import Manifest
from pipelines.label.output import REPORT_DIR, OutputFolder
from pipelines.label.predict import LabelPredictor
from pipelines.label.read import list_input_files, read_local, read_ray
from pipelines.label.resources import TASK_CPUS, actor_cpus, alive_node_cpus
from pipelines.label.summary import RunStats
from pipelines.label.tokenize import tokenize
from pipelines.label.validate import check_files, mark_rejected
from pipelines.label.write import write_batch

log = logging.getLogger(__name__)
BLOCK_BYTES = 8 * 1024 * 1024


@dataclass
class RunResult:
    """What a run did (also what the summary prints)."""

    run_id: str | None
    stats: RunStats
    files: int
    seconds: float
    engine: str
    model_version: str
    manifest: dict | None
    delta: object | None = None  # pipelines.label.delta.DeltaSync when --delta-table is given
    labels_table: object | None = None  # pipelines.label.delta_labels.LabelsCommit: OUTPUT/labels as a Delta table


def model_info(model: str, model_version: str | None) -> dict:
    """Model reference (as given and as pinned for every node), version and labels, read from the checkpoint
    without loading the weights. A hub id is pinned to its commit, a URI to its files' digest
    (`kobert_ops.hub.pin`): the actors of every node load exactly the model whose version the rows carry."""
    from kobert_ops import hub

    pinned = hub.pin(model, hub.MODEL_FILES)
    directory = hub.resolve(pinned, allow_patterns=hub.MODEL_FILES)
    config = json.loads((directory / "config.json").read_text())
    labels = [config["id2label"][key] for key in sorted(config.get("id2label", {}), key=int)]
    if not labels or all(re.fullmatch(r"LABEL_\d+", str(name)) for name in labels):
        raise UserError(f"model {model} names no labels (its config.json has "
                        f"{'no id2label' if not labels else 'only the placeholder names ' + ', '.join(labels)}); "
                        "set id2label to the label names in config.json, or fine-tune it with kobert train")
    extra_path = directory / "kobert.json"
    extra = json.loads(extra_path.read_text()) if extra_path.exists() else {}
    return {"path": str(model), "pinned": pinned, "directory": str(directory), "labels": labels,
            "preset": extra.get("preset"), "trained": extra.get("trained"), "model_version": model_version}


def default_version(directory: Path, reference: str | None = None) -> str:
    """`<model name>-<first 12 hex of sha256 over config and weights>`: changes whenever the weights do. The
    name is the reference's last part (a URI's or hub id's; a cached copy's folder is a digest). The digest is
    kept while the files stay as they are (`kobert_ops.file_digest`): an hourly run does not read the weights
    again for it."""
    from kobert_ops import file_digest

    files = [directory / "config.json"] + sorted(directory.glob("*.safetensors")) + sorted(
        directory.glob("*.bin")) + sorted(directory.glob("*.onnx"))
    name = directory.resolve().name
    if reference and not Path(reference).expanduser().is_dir():
        name = reference.split("#")[0].split("@")[0].rstrip("/").rsplit("/", 1)[-1] or name
    digest = file_digest.cached("sha256 of config and weights", files, lambda: file_digest.sha256_of(files))
    return f"{name}-{digest[:12]}"


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_label(config: LabelConfig) -> RunResult:
    """Label `config.input` into `config.output`; raises on any failure, leaving no `_SUCCESS` for this run."""
    report = ReportProcess()  # imports matplotlib on a core the start-up leaves idle (see kobert_ops.label_report)
    joined = False
    try:
        joined = join_cluster(config)
        return _run_label(config, report)
    finally:
        report.close()
        if joined:
            import ray

            ray.shutdown()


def join_cluster(config: LabelConfig) -> bool:
    """A run that will use the Ray at `RAY_ADDRESS` connects before any work, so that on a multi-node cluster
    a node-local input, output or model is refused in one line (`pipelines.core.nodes`) instead of failing at
    the commit. True when this call connected (the run then disconnects at its end)."""
    if config.engine == "local" or not os.environ.get("RAY_ADDRESS"):
        return False  # (and no `import ray`: a second of start-up the local engine does not need)
    import ray

    if ray.is_initialized():
        return False
    from pipelines.core.models import local_folder
    from pipelines.core.nodes import node_local, refuse_node_local

    ray.init(address=ray_defaults.joined_address(), **{"logging_level": logging.WARNING, "log_to_driver": False,
                                                       **console.ray_init_options()})
    console.note_ray_logs()
    try:
        refuse_node_local({"--output": config.output, "--delta-table": config.delta_table,
                           "--model": local_folder(config.model),
                           "--input": next((path for path in config.input if node_local(path)), None)})
    except BaseException:
        ray.shutdown()
        raise
    return True


def _run_label(config: LabelConfig, report: ReportProcess) -> RunResult:
    started = time.time()
    if config.delta_table:
        from pipelines.label.delta import require_deltalake

        require_deltalake()
    warming = warm_up(config)
    stats = RunStats()
    fs, files = list_input_files(config.input)
    output = OutputFolder.of(config.output)
    model = model_info(config.model, config.model_version)
    config = dataclasses.replace(config, model=model["pinned"])  # what the actors and tokenize tasks load
    version = None if model["model_version"] else in_background(default_version, Path(model["directory"]),
                                                                 model["path"])
    now = datetime.now(timezone.utc)
    run_id = new_run_id(now)
    sync = labels_table_step(output, config.output, config.table_format)
    lease = Lease.acquire(output.fs, output.root, run_id, config.lease_ttl_s)
    try:
        previous = output.prepare(config.incremental, config.overwrite, sync)
        columns = {"id": config.id_column, "text": config.text_column, "pass_through": config.pass_through,
                   "partition": config.partition_column, "max_length": config.max_length}
        if config.incremental and previous is not None:
            if previous.columns != columns:
                raise ValueError(f"--incremental needs the settings of the existing output {previous.columns}, "
                                 f"got {columns}")
            files, copies = new_files(fs, files, previous.labeled_files())
            if copies:
                log.info("%d input file(s) hold content already labeled under another name or timestamp, "
                         "skipped: %s", len(copies), ", ".join(f.path for f in copies[:3]))
            if not files:
                return RunResult(None, stats, 0, time.time() - started, "none", previous.model["model_version"],
                                 previous.to_json(), sync_delta_table(config, output, previous),
                                 sync(previous) if sync else None)
        else:
            files = with_digests(fs, files)
        stats.expected_rows, input_schemas = check_files(fs, files, config.text_column, config.columns)
        schema = table_schema.labels_schema(input_schemas, id_column=config.id_column,
                                            pass_through=config.pass_through, partition_column=config.partition_column)
        if config.incremental and previous is not None and previous.schema:
            schema = table_schema.hold(table_schema.from_json(previous.schema), schema, config.output)
        if sync is not None:
            delta_schema(schema, config.output)  # a column Delta cannot hold: refused before labeling
        model["model_version"] = model["model_version"] or version.result()
        checked = time.time()
        engine = choose_engine(config, stats.expected_rows)
        staging = output.staging_dir(run_id)
        write_kwargs = dict(fs=output.fs, staging=staging, id_column=config.id_column,
                            pass_through=config.pass_through, partition_column=config.partition_column,
                            model_version=model["model_version"], labeled_at=now, rows_per_file=config.rows_per_file,
                            run_id=run_id, schema=schema)
        runner = label_with_ray if engine == "ray" else label_locally
        if warming is not None:  # transformers' lazy imports are not thread-safe: let the warm-up finish first
            warming.join()
        runner(config, fs, files, model["directory"], write_kwargs, stats)
        labeled = time.time()
        if stats.rows != stats.expected_rows:
            raise RuntimeError(f"row count check failed: read {stats.expected_rows:,} rows, wrote "
                               f"{stats.rows:,} (labeled + rejected); nothing committed")
        if sum(stats.actors.values()) != stats.labeled:
            raise RuntimeError(f"row count check failed: {stats.labeled:,} rows labeled, but the actors report "
                               f"{sum(stats.actors.values()):,}; nothing committed")
        reported = stage_report(report, output, run_id, config, model["model_version"], stats, labeled - checked)
        committed = output.committed_paths(run_id, stats.labeled_files, stats.rejected_files,
                                           output.staged_reports(run_id) if reported else [])
        first_batch = stats.first_batch_at and round(stats.first_batch_at - _process_start(), 3)
        run = run_entry(run_id, now, engine, model, files, stats, committed,
                        {"check_inputs_s": round(checked - started, 3), "label_s": round(labeled - checked, 3),
                         "first_batch_since_process_start_s": first_batch},
                        sequence=(previous.sequence() if previous is not None else 0) + 1)
        extend = config.incremental and previous is not None
        manifest = Manifest(output=config.output, model={k: v for k, v in model.items() if k != "directory"},
                            columns=columns, runs=(previous.runs if extend else []) + [run],
                            schema=table_schema.to_json(schema))
        replace = previous.run_ids() if previous is not None and not extend else []
        run["timings"]["total_s"] = round(time.time() - started, 3)
        run["timings"]["since_process_start_s"] = round(time.time() - _process_start(), 3)
        lease.confirm()  # a run that lost its lease (not renewed for --lease-ttl-s) must not commit
        labels_table = output.commit(run_id, stats.labeled_files, stats.rejected_files, manifest,
                                     replace_runs=replace, sync=sync)
        delta = sync_delta_table(config, output, manifest)
        return RunResult(run_id, stats, len(files), time.time() - started, engine, model["model_version"],
                         manifest.to_json(), delta, labels_table)
    finally:
        lease.release()


def stage_report(report: ReportProcess, output: OutputFolder, run_id: str, config: LabelConfig, model_version: str,
                 stats: RunStats, seconds: float) -> bool:
    """Write the run's report (label distribution plot, score histograms) into its staging folder, for the
    commit to move into place, through the run's helper process (`report`). A report that fails
    to draw is logged, not fatal: the labels matter more."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as local:
            report.write(local, run_id=run_id, counts=dict(stats.labels), score_histograms=stats.score_histograms,
                         reasons=dict(stats.reasons), truncated=stats.truncated, seconds=seconds,
                         model=config.model, model_version=model_version)
            target = f"{output.staging_dir(run_id)}/{REPORT_DIR}"
            output.fs.makedirs(target, exist_ok=True)
            for path in Path(local).iterdir():
                output.fs.put_file(str(path), f"{target}/{path.name}")
        return True
    except Exception as error:  # noqa: BLE001 - see docstring
        log.warning("could not write the run report: %s", error)
        return False


def sync_delta_table(config: LabelConfig, output: OutputFolder, manifest: Manifest):
    """After `_SUCCESS`: bring the optional Delta table in line with the manifest (see pipelines/label/delta.py)."""
    if not config.delta_table:
        return None
    from pipelines.label.delta import sync_delta

    try:
        return sync_delta(output, manifest, config.delta_table)
    except Exception as error:
        raise RuntimeError(f"labels are committed to {config.output}, but appending them to the Delta table "
                           f"{config.delta_table} failed ({error}); run the command again with --incremental to "
                           "retry the append") from error


def run_entry(run_id: str, now: datetime, engine: str, model: dict, files, stats: RunStats,
              committed: dict[str, list[str]], timings: dict, sequence: int = 1) -> dict:
    """The manifest's record of one run (see docs/labeling.md). `labels` are the run's own: a later run
    with another model does not change what this run's label ids mean. `sequence` counts the output's runs
    (1, 2, ...; an `--overwrite` goes on counting): the Delta table's application transaction version."""
    reports = [path for path in committed["reports"] if path.endswith("/report.md")]
    return {
        "run_id": run_id, "sequence": sequence, "partition": f"run_id={run_id}", "started_at": now.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(), "engine": engine,
        "model_version": model["model_version"], "labels": model["labels"],
        "input_files": [f.to_json() for f in files],
        "rows": {"read": stats.expected_rows, "labeled": stats.labeled, "rejected": stats.rejected,
                 "truncated": stats.truncated},
        "label_counts": dict(stats.labels), "reject_reasons": dict(stats.reasons),
        "actors": stats.actor_shares(),
        "files": committed, **({"report": reports[0]} if reports else {}),
        "timings": {**timings, "total_s": None, "since_process_start_s": None},
    }


def warm_up(config: LabelConfig) -> threading.Thread | None:
    """Import the model code (seconds) in a thread while inputs are listed and checked, when this process may
    run the model itself (the local engine): ONNX Runtime or OpenVINO when the run will likely label with an
    export (`kobert_ops.cpu_path.may_use_export`: then torch and transformers are never imported), else torch
    and transformers. Join the thread before anything else imports from transformers: its lazy module is not
    thread-safe (a concurrent `from transformers import AutoConfig` failed with ImportError)."""
    if config.engine != "ray" and not os.environ.get("RAY_ADDRESS"):
        from kobert_ops.cpu_path import may_use_export

        export = may_use_export(config.model, config.runtime, config.precision, config.device,
                                config.threads_per_actor or os.cpu_count() or 1, config.forward_batch_size)
        thread = threading.Thread(target=_import_model_code, args=(export, config.model), daemon=True,
                                  name="warm-up")
        thread.start()
        return thread
    return None


def _import_model_code(export: str, model: str) -> None:
    """The imports, and what the first labeled batch would otherwise wait for on an export path: the tokenizer's
    combining-character table (~0.25 s, built once a process: `build_tables`) and, for a PyTorch folder whose own
    int8 export `auto` may take, the digest of its weights that the export is checked against (~0.3 s for the base
    preset, kept for the process by `cpu_path.weights_sha256`)."""
    try:
        if export:
            from kobert_ops import cpu_path
            from kobert_ops.tokenizer import build_tables

            build_tables()
            folder = Path(model).expanduser()
            if not (folder / cpu_path.EXPORT_GRAPHS[export]).is_file():  # a PyTorch folder, not an export itself
                cpu_path.weights_sha256(folder)
        if export == "openvino":
            import openvino  # noqa: F401

            import kobert_ops.openvino_predictor  # noqa: F401
        elif export == "onnx":
            import onnxruntime  # noqa: F401

            import kobert_ops.onnx_predictor  # noqa: F401
        else:
            import transformers.models.bert.modeling_bert  # noqa: F401

            import kobert_ops.predictor  # noqa: F401
    except Exception:  # the real import, later, reports any problem
        pass


def in_background(function, *args) -> Future:
    """Run `function(*args)` in a daemon thread (hashing a model releases the GIL)."""
    future: Future = Future()

    def target() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=target, daemon=True).start()
    return future


def choose_engine(config: LabelConfig, rows: int) -> str:
    if config.engine != "auto":
        return config.engine
    if os.environ.get("RAY_ADDRESS") or rows > config.local_max_rows:
        return "ray"
    return "local"


def label_locally(config: LabelConfig, fs, files, model_dir: str, write_kwargs: dict, stats: RunStats) -> None:
    """All stages in this process, one record batch (≤ rows_per_file rows) at a time."""
    predictor = LabelPredictor(model_dir, device=config.device, precision=config.precision, runtime=config.runtime,
                               forward_batch_size=config.forward_batch_size, max_length=config.max_length,
                               threads=config.threads_per_actor or (os.cpu_count() or 1))
    if config.progress:
        stats.progress()  # the bar from the start: its clock includes the first batch
    try:
        for batch in read_local(fs, files, config.columns, batch_size=config.rows_per_file):
            batch = mark_rejected(batch, text_column=config.text_column, id_column=config.id_column)
            batch = tokenize(batch, tokenizer_dir=model_dir, text_column=config.text_column,
                             max_length=config.max_length)
            stats.add(write_batch(predictor(batch), **write_kwargs))
            if config.progress:
                stats.progress()
    finally:
        stats.end_progress()


def label_with_ray(config: LabelConfig, fs, files, model_dir: str, write_kwargs: dict, stats: RunStats) -> None:
    """The streaming Ray Data pipeline; the driver only receives one small summary row per written batch.

    Actors get the model reference as given (not the driver's local copy): on a cluster each node resolves
    it itself, so a local model folder must exist at the same path on every node (or use a hub id).
    """
    import ray
    import ray.data

    started_ray = not ray.is_initialized()
    if started_ray:
        # RAY_ADDRESS, else a local Ray of our own ("local": never a `ray start` cluster Ray would otherwise
        # find on this machine) with one logical CPU beyond the cores for the light read and write tasks
        # (validating and tokenizing run in the actors), so the actors' threads can use every core.
        address = ray_defaults.joined_address()
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False, **console.ray_init_options()}
        if address:
            ray.init(address=address, include_dashboard=False, **quiet)
        else:
            ray_defaults.for_own_ray()
            ray.init(address="local", num_cpus=(os.cpu_count() or 1) + TASK_CPUS,
                     **ray_defaults.own_state_api(dashboard=False), **quiet)
        console.note_ray_logs()
    try:
        context = ray.data.DataContext.get_current()
        # A byte cap as well as read_ray's row cap: rows of very long texts still make blocks of bounded memory.
        context.target_max_block_size = BLOCK_BYTES
        # One progress line of our own (RunStats.progress), not Ray Data's: off a terminal its bars become
        # 20-line `logging_progress` blocks every 10 s, with "execution finished" notices around them.
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # Wait for the pool before the first block: an actor still loading its model while another has started
        # gets no share of a short input (seen on 3 nodes: 1,350 reviews, all labeled by one of 2 actors).
        context.wait_for_min_actors_s = int(math.ceil(config.actor_start_timeout_s)) or -1
        device = config.device
        if device == "auto":
            device = "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
        low, high = config.actor_range
        cpus = actor_cpus(config.cpus_per_actor, high, device, alive_node_cpus())
        dataset = read_ray(fs, files, config.columns, config.block_rows)
        dataset = dataset.map_batches(mark_rejected, batch_format="pyarrow", batch_size=config.batch_size,
                                      fn_kwargs={"text_column": config.text_column, "id_column": config.id_column})
        dataset = dataset.map_batches(tokenize, batch_format="pyarrow", batch_size=config.batch_size, fn_kwargs={
            "tokenizer_dir": config.model, "text_column": config.text_column, "max_length": config.max_length})
        dataset = dataset.map_batches(
            LabelPredictor, batch_format="pyarrow", batch_size=config.batch_size,
            compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
            num_gpus=1 if device == "cuda" else 0, num_cpus=cpus,
            fn_constructor_kwargs={"model": config.model, "device": device, "precision": config.precision,
                                   "runtime": config.runtime,
                                   "forward_batch_size": config.forward_batch_size,
                                   "max_length": config.max_length, "threads": config.threads_per_actor})
        dataset = dataset.map_batches(write_batch, batch_format="pyarrow", batch_size=config.rows_per_file,
                                      fn_kwargs=write_kwargs)
        if config.progress:
            stats.progress()  # the bar from the start: the actors load their model before the first batch
        try:
            with console.cpp_lines_to_log():  # Ray's C++ core warns on every actor pool (ray-project/ray#53727)
                for summary in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                    stats.add(summary)
                    if config.progress:
                        stats.progress()
        except ray.exceptions.GetTimeoutError as error:
            if "starting actors" not in str(error):
                raise
            gpus = " and 1 GPU" if device == "cuda" else ""
            raise UserError(f"the cluster did not start {low} label actor(s) of {cpus:g} CPU(s){gpus} each within "
                            f"--actor-start-timeout-s {config.actor_start_timeout_s:g}; lower --actors or "
                            "--cpus-per-actor, or add nodes") from None
        finally:
            stats.end_progress()
    finally:
        if started_ray:
            ray.shutdown()
            if not address:
                ray_defaults.release_state_api()


def _process_start() -> float:
    """When this process started (Linux /proc), for the manifest's `since_process_start_s`."""
    try:
        with open("/proc/self/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):  # not Linux: count from import
        return _IMPORTED


_IMPORTED = time.time()
