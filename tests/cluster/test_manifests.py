"""The KubeRay manifests and the crontab must run commands this project's CLI really accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from pipelines.cli import build_parser

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def kobert_commands(text: str) -> list[list[str]]:
    """Every `kobert …` command line inside a shell string (split at `--` and shell operators)."""
    words = shlex.split(text.replace("$(date -u +%Y%m%dT%H)", "HOUR"))
    commands, current = [], None
    for word in words:
        if word.endswith("kobert"):
            current = []
            commands.append(current)
        elif word in ("--", ">>", "2>&1", "&&") or word.startswith("/var/log"):
            current = None
        elif current is not None:
            current.append(word)
    return commands


def manifest_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted((CLUSTER / "kuberay").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        spec = document["spec"]
        texts = [spec.get("entrypoint", "")]
        if document["kind"] == "CronJob":
            texts += spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        found += [(path.name, command) for text in texts for command in kobert_commands(text)]
    crontab = (CLUSTER / "cron" / "crontab.example").read_text().splitlines()
    found += [("crontab.example", c) for line in crontab if line and not line.startswith("#")
              for c in kobert_commands(line)]
    return found


COMMANDS = manifest_commands()


def test_every_manifest_runs_kobert():
    names = {name for name, _ in COMMANDS}
    assert names == {"rayjob-train.yaml", "rayjob-label.yaml", "cronjob-incremental-label.yaml", "crontab.example"}


@pytest.mark.parametrize("name,command", COMMANDS, ids=[f"{n}:{c[0]}" for n, c in COMMANDS])
def test_manifest_command_parses(name, command):
    args = build_parser().parse_args(command)  # argparse exits (SystemExit) on an unknown option
    assert args.command == command[0]


def test_raycluster_has_gpu_workers_and_a_job_api():
    cluster = yaml.safe_load((CLUSTER / "kuberay" / "raycluster.yaml").read_text())
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"containerPort": 8265, "name": "dashboard"} in head["ports"]
    worker = cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
