"""The KubeRay manifests and the crontab: commands this project's CLI really accepts, fields KubeRay's and
Kubernetes' schemas really know (unknown ones are errors, see kube_schemas.py), settings that work as shipped."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from pipelines.cli import build_parser
from tests.cluster import kube_schemas

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def load_manifests() -> list[tuple[str, dict]]:
    """(file:index, document) for every YAML document in cluster/kuberay/."""
    return [(f"{path.name}:{index}", document)
            for path in sorted((CLUSTER / "kuberay").glob("*.yaml"))
            for index, document in enumerate(yaml.safe_load_all(path.read_text())) if document]


MANIFESTS = load_manifests()
MANIFEST_IDS = [name for name, _ in MANIFESTS]


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


@pytest.mark.parametrize("name,document", MANIFESTS, ids=MANIFEST_IDS)
def test_manifest_validates_with_unknown_fields_as_errors(name, document):
    assert kube_schemas.manifest_errors(document) == []


def planted_typos(document: dict) -> list[tuple[kube_schemas.KeyPath, str, object]]:
    """Misspelled fields to plant, one at a time: a deadline beside the real ones, a field in each container."""
    deadline_at = ("spec", "jobTemplate", "spec") if document["kind"] == "CronJob" else ("spec",)
    typos = [(deadline_at, "activeDeadlineSecond", 3600), (("metadata",), "lables", {"app": "kobert"})]
    typos += [(path, "imagePullPolicyy", "IfNotPresent") for path, _ in kube_schemas.containers(document)]
    return typos


PLANTED = [(name, document, path, field, value) for name, document in MANIFESTS
           for path, field, value in planted_typos(document)]


@pytest.mark.parametrize("name,document,path,field,value", PLANTED,
                         ids=[f"{p[0]}:{kube_schemas.dotted(p[2])}.{p[3]}" for p in PLANTED])
def test_a_planted_misspelled_field_fails_validation(name, document, path, field, value):
    errors = kube_schemas.manifest_errors(kube_schemas.with_field(document, path, field, value))
    assert errors, f"{field} planted at {kube_schemas.dotted(path)} passed"
    assert all(f"'{field}' was unexpected" in error for error in errors), errors


RAY_MANIFESTS = [(name, document) for name, document in MANIFESTS if document["apiVersion"].startswith("ray.io/")]


@pytest.mark.parametrize("name,document", RAY_MANIFESTS, ids=[name for name, _ in RAY_MANIFESTS])
def test_kuberay_crds_made_strict_alone_catch_a_typo_inside_a_pod(name, document):
    # KubeRay's CRDs embed the whole core/v1 PodTemplateSpec: made strict, they reject a misspelled container
    # field by themselves; as shipped (additionalProperties unset) they let it through, which is why
    # kube_schemas makes them strict before validating.
    path, _ = next(kube_schemas.containers(document))
    planted = kube_schemas.with_field(document, path, "imagePullPolicyy", "IfNotPresent")
    assert kube_schemas.crd_errors(planted) != []
    assert kube_schemas.crd_errors(planted, strict_fields=False) == []
