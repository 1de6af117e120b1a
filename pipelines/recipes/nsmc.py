"""`kobert recipe nsmc`: from the raw Naver reviews to a fine-tuned sentiment model in `artifacts/nsmc/`,
with the TF-IDF baseline measured on the same test split in the same run.

    kobert recipe nsmc                       # full run: prepare → baseline → pretrain → fine-tune → test
    kobert recipe nsmc --quick               # minutes: small samples, to check the recipe end to end

Real KoBERT weights cannot be downloaded here, so the encoder is pretrained (MLM) on the reviews
themselves, never on the test split's texts, then fine-tuned on the NSMC training split. The summary
(`artifacts/nsmc/summary.json`) holds both test accuracies and every stage's wall time. Run it again
after an interruption: finished stages are skipped, an interrupted training stage resumes (`stages.json`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.args import add_dataclass_arguments, dataclass_from_args

log = logging.getLogger(__name__)
STAGES_FILE = "stages.json"
HELP = "run the NSMC recipe: prepare, TF-IDF baseline, MLM pretraining, fine-tuning, test accuracy"


@dataclass
class RecipeConfig:
    """What to train, for how long, and where it goes."""

    output: str = field(default="artifacts/nsmc", metadata={"help": "folder for data, pretrained encoder, model and summary"})
    input: str | None = field(default=None, metadata={"help": "raw reviews Parquet (default: $KOBERT_SHARED/data/nsmc/reviews.parquet)"})
    preset: str = field(default="small", metadata={"help": "encoder size", "choices": ["tiny", "small", "base"]})
    pretrain_epochs: int | None = field(default=None, metadata={"help": "MLM epochs over all reviews but the test split's (0: fine-tune from random weights; default: 1 on a GPU with bf16 units or an AMX CPU, 0 elsewhere, where one MLM epoch alone takes over an hour)"})
    pretrain_max_steps: int | None = field(default=None, metadata={"help": "cap MLM optimizer steps per epoch (time budget)"})
    epochs: int = field(default=2, metadata={"help": "fine-tuning epochs"})
    learning_rate: float = field(default=5e-4, metadata={"help": "peak fine-tuning learning rate (a small encoder pretrained on 650k reviews needs far more than BERT-base's 5e-5)"})
    batch_size: int = field(default=64, metadata={"help": "rows per batch per worker, both stages"})
    max_length: int = field(default=64, metadata={"help": "KoBERT ids per review (NSMC reviews average ~17)"})
    num_workers: int = field(default=2, metadata={"help": "Ray Train workers (on 2 cores, 2 workers step 1.4x faster than 1)"})
    quick: bool = field(default=False, metadata={"help": "small samples everywhere: a smoke run of the whole recipe"})
    seed: int = field(default=42, metadata={"help": "seed of splits and training"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", choices=["nsmc"], help="which recipe")
    add_dataclass_arguments(parser, RecipeConfig, "recipe")


def run(args: argparse.Namespace) -> int:
    summary = run_recipe(dataclass_from_args(RecipeConfig, args))
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def run_recipe(config: RecipeConfig) -> dict:
    import pyarrow.parquet as pq

    from kobert_ops import paths
    from kobert_ops.baseline import evaluate_tfidf_baseline
    from pipelines.core.driver import ray_session
    from pipelines.evaluate import EvaluateConfig, evaluate
    from pipelines.prepare import PrepareConfig, prepare
    from pipelines.pretrain.config import PretrainDataConfig, PretrainJob, PretrainModelConfig
    from pipelines.pretrain.run import pretrain
    from pipelines.train.config import ClusterConfig, DataConfig, ModelConfig, TrainingConfig, TrainJob
    from pipelines.train.run import train

    started = time.perf_counter()
    root = Path(config.output)
    source = config.input or str(paths.require(paths.nsmc_reviews(), "NSMC reviews", paths.NSMC_HELP))
    data = root / "data"
    if config.pretrain_epochs is None:
        config.pretrain_epochs = default_pretrain_epochs()
    stages = Stages(root / STAGES_FILE)

    prepared = stages.run("prepare", prepare, PrepareConfig(input=source, output=str(data), seed=config.seed,
                                                            sample=8000 if config.quick else None))

    def baseline() -> dict:
        train_table = pq.read_table(data / "train.parquet", columns=["text", "label"])
        test_table = pq.read_table(data / "test.parquet", columns=["text", "label"])
        result = evaluate_tfidf_baseline(train_table["text"].to_pylist(), train_table["label"].to_numpy(),
                                         test_table["text"].to_pylist(), test_table["label"].to_numpy())
        return {"accuracy": result.accuracy}

    tfidf = stages.run("baseline", lambda _: baseline(), {"data": prepared})
    # one Ray of the recipe's own for both training stages (never a stranger's: see ray_session), if either runs
    training_done = stages.finished("pretrain") or config.pretrain_epochs == 0
    training_done = training_done and stages.finished("fine_tune")
    session = nullcontext() if training_done else ray_session(ClusterConfig(output=str(root),
                                                                            num_workers=config.num_workers))
    with session:
        model = config.preset
        if config.pretrain_epochs > 0:
            job = PretrainJob(
                model=PretrainModelConfig(model=config.preset),
                data=PretrainDataConfig(data=source, exclude=str(data / "test.parquet"), max_length=config.max_length,
                                        limit=10_000 if config.quick else None),
                training=TrainingConfig(epochs=config.pretrain_epochs, batch_size=config.batch_size, seed=config.seed,
                                        max_steps_per_epoch=config.pretrain_max_steps),
                cluster=ClusterConfig(output=str(root / "pretrained"), num_workers=config.num_workers),
            )
            stages.run("pretrain", lambda job: _best(pretrain(job)), job)
            model = str(root / "pretrained")
        trained = stages.run("fine_tune", lambda job: _best(train(job)), TrainJob(
            model=ModelConfig(model=model),
            data=DataConfig(train=str(data / "train.parquet"), eval=str(data / "eval.parquet"),
                            max_length=config.max_length),
            training=TrainingConfig(epochs=config.epochs, batch_size=config.batch_size, seed=config.seed,
                                    learning_rate=config.learning_rate),
            cluster=ClusterConfig(output=str(root / "model"), num_workers=config.num_workers),
        ))
    tested = stages.run("test", evaluate, EvaluateConfig(model=str(root / "model"), data=str(data / "test.parquet"),
                                                         output=str(root / "model" / "test"),
                                                         max_length=config.max_length))
    summary = {
        "test_accuracy": tested["accuracy"],
        "test_macro_f1": tested["macro_f1"],
        "tfidf_baseline_test_accuracy": tfidf["accuracy"],
        "beats_baseline": tested["accuracy"] > tfidf["accuracy"],
        "test_rows": tested["n"],
        "splits": prepared["splits"],
        "best_eval_accuracy": trained["best"]["eval_accuracy"],
        "model": str(root / "model"),
        "config": vars(config),
        "seconds": stages.seconds,
        "skipped": stages.skipped,
        "wall_minutes": round((time.perf_counter() - started) / 60, 1),
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _best(summary: dict) -> dict:
    """What the recipe keeps of a training stage's summary (its best epoch, without the fingerprints)."""
    return {"output": summary["output"],
            "best": {k: v for k, v in summary["best"].items() if "fingerprint" not in k and k != "train_loss_curve"}}


class Stages:
    """The recipe's record of its stages (`stages.json`): what each ran with, whether it finished, its result.

    A re-run skips a finished stage with the same settings (it neither redoes nor re-resumes it), resumes a
    training stage that started but did not finish, and refuses a stage whose settings changed (a `--quick`
    run's folder reused for the full recipe), since its outputs would mix two runs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.record: dict = json.loads(path.read_text()) if path.exists() else {}
        self.seconds: dict[str, float] = {}
        self.skipped: list[str] = []

    def finished(self, name: str) -> bool:
        """Whether `name` finished in an earlier run (its settings are checked when it is run)."""
        return bool(self.record.get(name, {}).get("finished"))

    def run(self, name: str, function, settings_object):
        from pipelines.core.driver import stage_is_resumable
        from pipelines.errors import UserError

        settings = json.loads(json.dumps(_settings(settings_object), default=str))
        recorded = self.record.get(name)
        if recorded and recorded["settings"] != settings:
            raise UserError(f"{self.path.parent} holds a {name} stage run with other settings: use another --output "
                            f"(or delete {self.path.parent})")
        if recorded and recorded["finished"]:
            log.info("recipe: %s already finished with these settings, skipped", name)
            self.skipped.append(name)
            self.seconds[name] = 0.0
            return recorded["result"]
        cluster = getattr(settings_object, "cluster", None)
        if cluster is not None:
            cluster.resume = stage_is_resumable(cluster)
        self._write(name, {"settings": settings, "finished": False, "result": None})
        begin = time.perf_counter()
        result = function(settings_object)
        self.seconds[name] = round(time.perf_counter() - begin, 1)
        self._write(name, {"settings": settings, "finished": True, "result": result})
        return result

    def _write(self, name: str, entry: dict) -> None:
        self.record[name] = json.loads(json.dumps(entry, default=str))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.record, indent=2, ensure_ascii=False) + "\n")


def _settings(settings_object) -> dict:
    """A stage's settings as plain data; a training job's `resume` flag is the recipe's choice, not a setting."""
    values = dataclasses.asdict(settings_object) if dataclasses.is_dataclass(settings_object) else dict(settings_object)
    values.get("cluster", {}).pop("resume", None)
    return values


def default_pretrain_epochs() -> int:
    """1 MLM epoch where pretraining is fast (a GPU with bf16 units, or a CPU with AMX), else 0.

    Measured on 2 cores with 2 workers: the small preset fine-tuned at 240 samples/s in bf16 on a Sapphire Rapids
    Xeon (AMX; max length 128) but 120 samples/s in fp32 on an AVX2-only EPYC (max length 64), where one MLM
    epoch over ~630k reviews would take about 90 minutes by itself; the recipe's time then goes to fine-tuning.
    AVX-512 bf16 without AMX (EPYC Zen 4) is not enough: MLM ran there at 18 s a step, about 24 minutes for
    `--quick` alone.
    """
    from kobert_ops import cpu_facts, predictor

    device = predictor.resolve_device("auto")
    if device.startswith("cuda"):
        return 1 if predictor.bf16_is_fast(device) else 0
    return 1 if cpu_facts.has_amx() else 0
