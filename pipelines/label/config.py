"""`LabelConfig`: every knob of a labeling run, with its help text (the CLI is generated from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

ENGINES = ["auto", "ray", "local"]


@dataclass
class LabelConfig:
    """Labeling run: what to read, which model, where to write."""

    model: str = field(metadata={"help": "classifier directory or Hugging Face hub id (labels come from its "
                                      "config.json, the tokenizer from its own files)"})
    input: list[str] = field(metadata={"help": "Parquet input: a file, folder, glob or comma-separated list; "
                                               "local paths or any fsspec URI (s3://, gs://, ...)"})
    output: str = field(metadata={"help": "output folder (local or fsspec URI); see docs/labeling.md"})
    text_column: str = field(default="text", metadata={"help": "column holding the text to label"})
    id_column: str = field(default="review_id", metadata={"help": "column identifying a row in the output"})
    pass_through: list[str] = field(default_factory=list, metadata={
        "help": "input columns copied unchanged into the output, comma-separated"})
    partition_column: str | None = field(default=None, metadata={
        "help": "input column whose values become Hive partition folders (col=value/) under the run folder"})
    batch_size: int = field(default=4096, metadata={
        "help": "rows handed to a model actor at once; they are sorted by length inside it"})
    rows_per_block: int = field(default=0, metadata={
        "help": "rows per Ray Data block (ray engine; 0: --batch-size, so one block is one actor call): the unit "
                "actors share out and a lost node repeats, whatever the input files' sizes"})
    forward_batch_size: int = field(default=0, metadata={
        "help": "rows per forward pass of the model (0: the runtime's own, 128 on PyTorch and OpenVINO, 64 on ONNX Runtime)"})
    max_length: int = field(default=128, metadata={
        "help": "token ids per text, the model's special tokens included; longer texts are truncated and flagged"})
    actors: str = field(default="1", metadata={
        "help": "model actors: N, or MIN,MAX for an autoscaling pool (on GPU nodes each takes one GPU)"})
    device: str = field(default="auto", metadata={"help": "where the model runs", "choices": ["auto", "cpu", "cuda"]})
    precision: str = field(default="auto", metadata={
        "help": "bf16: autocast (fp32 weights); bf16-full: bf16 weights and activations (faster; probabilities "
                "within ~0.005 of fp32); int8: dynamic int8 quantization on CPU (1.4-1.9x fp32 on AVX2 CPUs, which "
                "have no bf16 units; probabilities within ~0.02); auto: bf16-full where the hardware has bf16 "
                "units (AMX, CUDA), else fp32",
        "choices": ["auto", "fp32", "bf16", "bf16-full", "int8"]})
    runtime: str = field(default="auto", metadata={
        "help": "torch: a PyTorch classifier folder; onnx: a `kobert export --format onnx` folder on ONNX Runtime; "
                "openvino: a `kobert export --format openvino` folder on OpenVINO (both CPU; the precision is the "
                "export's, see docs/onnx.md); auto: the export a folder is (model.onnx, model.xml), a PyTorch "
                "folder's own checked int8 exports (openvino-int8/, onnx-int8/; and PyTorch on AMX CPUs): the fastest "
                "measured on this machine (once per machine and model; KOBERT_PATH_TRIAL=off: by the CPU's flags), "
                "else torch", "choices": ["auto", "torch", "onnx", "openvino"]})
    cpus_per_actor: float = field(default=0, metadata={
        "help": "CPUs each model actor reserves (ray engine; 0: on GPU 1, on CPU the cluster's CPUs shared among "
                "--actors with one CPU left for the read and write tasks)"})
    actor_start_timeout_s: float = field(default=600, metadata={
        "help": "seconds to wait for the --actors minimum to start and load the model before any labeling (ray "
                "engine), so every actor gets a share of the input; a pool that cannot start by then fails in "
                "one line (0: do not wait, actors join as they come up)"})
    threads_per_actor: int = field(default=0, metadata={
        "help": "torch CPU threads per model actor (0: the CPUs it reserves, at least 1; all cores on the local "
                "engine)"})
    rows_per_file: int = field(default=100_000, metadata={"help": "rows per output Parquet file (at most)"})
    incremental: bool = field(default=False, metadata={
        "help": "label only input files not in OUTPUT's manifest and commit them as a new run partition"})
    delta_table: str | None = field(default=None, metadata={
        "help": "also copy the labeled rows into a Delta Lake table elsewhere (path or URI): each run one ACID "
                "append, exactly once (OUTPUT/labels/ is a Delta table itself, with no copy; see docs/labeling.md)"})
    table_format: str = field(default="delta", metadata={
        "help": "delta: OUTPUT/labels/ is also a Delta Lake table, each run one commit of the files it wrote (no "
                "copy); none: the _SUCCESS manifest only (an output that already has a Delta table keeps it in "
                "step either way)", "choices": ["delta", "none"]})
    lease_ttl_s: float = field(default=600, metadata={
        "help": "seconds a run's lease on OUTPUT (OUTPUT/_LOCK.<n>) lasts past its last renewal; it renews every "
                "quarter of that while it lives. A run killed on another machine keeps OUTPUT from other runs "
                "that long (one killed on this machine, not at all)"})
    overwrite: bool = field(default=False, metadata={"help": "replace a complete OUTPUT (default: refuse)"})
    engine: str = field(default="auto", metadata={
        "help": "ray: Ray Data pipeline; local: same stages in this process; auto: local for small inputs "
                "when RAY_ADDRESS is unset, else ray", "choices": ENGINES})
    local_max_rows: int = field(default=50_000, metadata={"help": "largest input that --engine auto labels in-process"})
    model_version: str | None = field(default=None, metadata={
        "help": "version string stored in every row (default: model folder name + hash of its weights)"})
    progress: bool = field(default=True, metadata={"help": "print progress lines while running"})

    def __post_init__(self) -> None:
        if isinstance(self.input, str):
            self.input = [self.input]
        if not self.input:
            raise ValueError("--input names no file")
        if self.id_column == self.text_column:
            raise ValueError("--id-column and --text-column must differ")
        for name, value in [("--batch-size", self.batch_size), ("--rows-per-file", self.rows_per_file)]:
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        for name, value in [("--rows-per-block", self.rows_per_block), ("--cpus-per-actor", self.cpus_per_actor),
                            ("--forward-batch-size", self.forward_batch_size),
                            ("--threads-per-actor", self.threads_per_actor),
                            ("--actor-start-timeout-s", self.actor_start_timeout_s)]:
            if value < 0:
                raise ValueError(f"{name} must be 0 (automatic) or more, got {value}")
        if not 2 < self.max_length <= 512:
            raise ValueError(f"--max-length must be in 3..512 (KoBERT has 512 positions), got {self.max_length}")
        self.actor_range  # validates --actors
        reserved = {"label", "label_name", "score", "probabilities", "truncated", "model_version", "labeled_at",
                    "run_id", "reason", "labeled_by"}
        clashes = reserved.intersection(self.pass_through)
        if clashes:
            raise ValueError(f"--pass-through columns {sorted(clashes)} clash with output columns")
        if self.lease_ttl_s < 4:
            raise ValueError(f"--lease-ttl-s must be at least 4 (renewed every quarter of it), got {self.lease_ttl_s}")
        if self.incremental and self.overwrite:
            raise ValueError("--incremental and --overwrite exclude each other")
        if self.delta_table and self.delta_table.rstrip("/") == f"{self.output.rstrip('/')}/labels":
            raise ValueError("--delta-table names OUTPUT/labels, which is a Delta table of its own already "
                             "(--table-format delta); leave --delta-table out")
        from kobert_ops.onnx_predictor import check_runtime

        check_runtime(self.model, self.runtime)  # a local folder of the other kind: refused before any row

        from pipelines.redact import refuse_uri_query

        for option, uri in [*(("--input", path) for path in self.input), ("--output", self.output),
                            ("--model", self.model), ("--delta-table", self.delta_table)]:
            refuse_uri_query(option, uri)

    @property
    def actor_range(self) -> tuple[int, int]:
        """(min, max) model actors from `--actors N` or `--actors MIN,MAX`."""
        try:
            numbers = [int(part) for part in str(self.actors).split(",")]
        except ValueError:
            raise ValueError(f"--actors must be N or MIN,MAX, got {self.actors!r}") from None
        if len(numbers) not in (1, 2):
            raise ValueError(f"--actors must be N or MIN,MAX, got {self.actors!r}")
        low, high = numbers[0], numbers[-1]
        if low < 1 or high < low:
            raise ValueError(f"--actors must be N or MIN,MAX with 1 <= MIN <= MAX, got {self.actors!r}")
        return low, high

    @property
    def columns(self) -> list[str]:
        """Input columns a run reads: id, text, pass-through and partition column, each once."""
        wanted = [self.id_column, self.text_column, *self.pass_through]
        if self.partition_column:
            wanted.append(self.partition_column)
        return list(dict.fromkeys(wanted))

    @property
    def block_rows(self) -> int:
        """Rows per Ray Data block: `--rows-per-block`, else `--batch-size`."""
        return self.rows_per_block or self.batch_size
