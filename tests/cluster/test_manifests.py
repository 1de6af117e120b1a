"""The KubeRay manifests and the crontab: commands this project's CLI really accepts, fields KubeRay's and
Kubernetes' schemas really know (unknown ones are errors, see kube_schemas.py), settings that work as shipped."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize("name,document", MANIFESTS, ids=MANIFEST_IDS)
def test_every_pod_of_the_manifest_is_checked(name, document):
    pods = [kube_schemas.dotted(path) for path, _ in kube_schemas.pod_templates(document)]
    expected = {"CronJob": 1, "RayCluster": 2, "RayJob": 2}[document["kind"]]  # RayJob: its own head and workers
    assert len(pods) == expected, pods


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


def test_a_submitter_pod_template_is_validated_too():
    # The RayJobs keep KubeRay's default submitter pod (the head's image, 0.5-1 CPU); one that sets its own
    # submitterPodTemplate gets it checked like the head and workers.
    [job] = [document for name, document in MANIFESTS if name == "rayjob-train.yaml:0"]
    submitter = {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "ray-job-submitter", "image": "REGISTRY/kobert-pipeline:0.1.0"}]}}
    with_submitter = kube_schemas.with_field(job, ("spec",), "submitterPodTemplate", submitter)
    assert kube_schemas.manifest_errors(with_submitter) == []
    planted = kube_schemas.with_field(with_submitter, ("spec", "submitterPodTemplate", "spec", "containers", 0),
                                      "imagePullPolicyy", "Always")
    errors = kube_schemas.manifest_errors(planted)
    assert any(e.startswith("$.spec.submitterPodTemplate") for e in errors), errors  # the CRD
    assert any(e.startswith("spec.submitterPodTemplate:") for e in errors), errors  # Kubernetes' pod schema


def ray_cluster_specs() -> list[tuple[str, dict]]:
    """(manifest, RayClusterSpec) for the long-lived cluster and each RayJob's own cluster."""
    specs = []
    for name, document in MANIFESTS:
        if document["kind"] == "RayCluster":
            specs.append((name, document["spec"]))
        elif document["kind"] == "RayJob":
            specs.append((name, document["spec"]["rayClusterSpec"]))
    return specs


def env_entries() -> list[tuple[str, str, dict]]:
    """(manifest, container path, env entry) for every env entry of every container."""
    return [(name, kube_schemas.dotted(path), entry) for name, document in MANIFESTS
            for path, container in kube_schemas.containers(document) for entry in container.get("env", [])]


def test_token_auth_is_set_through_auth_options_not_by_hand():
    specs = ray_cluster_specs()
    assert len(specs) == 3
    for name, spec in specs:
        # KubeRay ≥ 1.5.1 then sets RAY_AUTH_MODE/RAY_AUTH_TOKEN on every Ray container it runs, the
        # autoscaler sidecar and the RayJob submitter included, which a hand-set env never reaches.
        assert spec.get("authOptions", {}).get("mode") == "token", name
    # only the CronJob's submitter, which is no Ray node, sets the token itself
    by_hand = [(name, where) for name, where, entry in env_entries()
               if entry["name"].startswith("RAY_AUTH") and not name.startswith("cronjob")]
    assert by_hand == []


def test_the_cron_submitter_uses_the_token_the_long_lived_cluster_runs_with():
    [cluster] = [document for _, document in MANIFESTS if document["kind"] == "RayCluster"]
    secret = cluster["spec"]["authOptions"]["secretName"]
    [token] = [entry for name, _, entry in env_entries()
               if name.startswith("cronjob") and entry["name"] == "RAY_AUTH_TOKEN"]
    # KubeRay reads the token from the data key auth_token of authOptions.secretName
    assert token["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "auth_token"}


def test_rayjobs_have_deadlines_and_submitter_retries_for_a_slow_head():
    jobs = [(name, document["spec"]) for name, document in MANIFESTS if document["kind"] == "RayJob"]
    assert len(jobs) == 2
    for name, spec in jobs:
        # Without a pre-running deadline a RayJob whose GPU workers never schedule waits forever.
        assert 0 < spec["preRunningDeadlineSeconds"] < spec["activeDeadlineSeconds"], name
        # The submitter is a K8s Job that fails while the head's job agent is not up yet; each retry backs off
        # 10 s, 20 s, 40 s, ... so 5 retries cover several minutes of a slow head, and it checks the
        # submission id first, so a retry never submits twice.
        assert spec["submitterConfig"]["backoffLimit"] >= 5, name


def test_the_hourly_cronjob_cannot_outlive_its_hour():
    [cron] = [document for _, document in MANIFESTS if document["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 3600
    [command] = [c for name, c in COMMANDS if name == "cronjob-incremental-label.yaml" and c[0] == "submit"]
    args = build_parser().parse_args(command)
    # the Ray job is stopped before the pod's deadline, and also when the pod is ended (SIGTERM)
    assert 0 < args.timeout_s < cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    assert args.stop_on_interrupt


SECRET_LIKE = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)


def test_credentials_come_only_from_kubernetes_secrets():
    entries = env_entries()
    secret_like = [(name, where, entry) for name, where, entry in entries if SECRET_LIKE.search(entry["name"])]
    assert secret_like, "the cron submitter's RAY_AUTH_TOKEN at least"
    for name, where, entry in secret_like:
        assert "value" not in entry and "secretKeyRef" in entry.get("valueFrom", {}), (name, where, entry)
    for path in (CLUSTER / "kuberay").glob("*.yaml"):
        text = path.read_text()
        assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]", text, re.IGNORECASE), path.name


def secret_names() -> set[str]:
    """Every Kubernetes Secret a manifest names: envFrom, env valueFrom, authOptions.secretName, volumes."""
    names = set()
    for _, document in MANIFESTS:
        for path, container in kube_schemas.containers(document):
            names |= {source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source}
            names |= {entry["valueFrom"]["secretKeyRef"]["name"] for entry in container.get("env", [])
                      if "secretKeyRef" in entry.get("valueFrom", {})}
        for _, template in kube_schemas.pod_templates(document):
            names |= {volume["secret"]["secretName"] for volume in template["spec"].get("volumes", [])
                      if "secret" in volume}
    names |= {spec["authOptions"]["secretName"] for _, spec in ray_cluster_specs()
              if "secretName" in spec.get("authOptions", {})}
    return names


def test_every_secret_the_manifests_name_is_documented_with_its_create_command():
    names = secret_names()
    assert {"kobert-object-store", "kobert-ray-token"} <= names
    readme = (CLUSTER / "README.md").read_text()
    for name in sorted(names):
        assert re.search(rf"kubectl create secret generic {name}\b", readme), name


PATH_FLAGS = {"--model", "--tokenizer", "--input", "--output", "--train", "--eval", "--storage-path", "--resume",
              "--delta-table"}
HUB_MODELS = {"skt/kobert-base-v1"}  # a training run may start from a hub id instead of a stored model


def test_every_path_a_cluster_job_takes_is_an_object_store_uri():
    # Nodes share nothing but object storage: a local path on a cluster is a file on one pod's disk.
    kuberay = [(name, command) for name, command in COMMANDS if name != "crontab.example"]
    checked = 0
    for name, command in kuberay:
        for flag, value in zip(command, command[1:]):
            if flag in PATH_FLAGS:
                checked += 1
                assert value.startswith("s3://") or (flag == "--model" and value in HUB_MODELS), (name, flag, value)
        if command[0] == "train":
            assert "--storage-path" in command, "checkpoints must outlive the job's cluster"
    assert checked >= 9


def test_ray_version_of_the_clusters_is_the_installed_one():
    import ray

    for name, spec in ray_cluster_specs():
        assert spec["rayVersion"] == ray.__version__, name
    assert f"rayproject/ray:{ray.__version__}-" in (CLUSTER / "Dockerfile").read_text()


def test_the_image_needs_nothing_from_shared_and_ships_no_local_state():
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    assert not any("shared" in line for line in instructions), "a model in object storage brings its tokenizer"
    ignored = [line.strip() for line in (CLUSTER.parent / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for entry in (".venv", ".git", "artifacts", "runs", "models", "tests"):
        assert entry in ignored, entry
    # every folder the Dockerfile copies is in the build context
    copied = {word.rstrip("/") for line in instructions if line.startswith("COPY")
              for word in line.split()[1:-1] if not word.startswith("--")}
    assert copied and not copied & set(ignored), copied & set(ignored)


def test_the_image_installs_every_cpu_runtime_that_label_offers():
    """`kobert label --runtime onnx|openvino` and `auto`'s int8 exports run on the cluster's nodes: the image
    installs their extras (issue 14: ONNX Runtime is an extra "that the dev environment and the cluster image
    install"; the image installed only s3 and gcs)."""
    import re
    import tomllib

    from kobert_ops.onnx_predictor import RUNTIMES

    dockerfile = (CLUSTER / "Dockerfile").read_text()
    [extras] = re.findall(r"pip install [^\n]*'\.\[([a-z0-9,]+)\]'", dockerfile)
    extras = set(extras.split(","))
    runtimes = set(RUNTIMES) - {"auto", "torch"}
    assert runtimes <= extras, runtimes - extras
    optional = tomllib.loads((CLUSTER.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras <= set(optional)
