"""Offline schema checks for the manifests in cluster/kuberay/, with unknown fields as errors.

Kubernetes prunes fields a schema does not know without a word, so a misspelled `activeDeadlineSecond` is a
deadline that never takes effect. Two sources of truth, both offline:

- KubeRay's CRDs in `$KOBERT_SHARED/kuberay/crds/` (RayCluster, RayJob, RayCronJob). Their `openAPIV3Schema`
  leaves `additionalProperties` unset, which JSON Schema reads as "anything goes", so every object schema
  that lists `properties` (and is not `x-kubernetes-preserve-unknown-fields`) gets `additionalProperties:
  false` first. KubeRay's CRDs embed the whole core/v1 PodTemplateSpec, so made strict they already reject a
  typo inside a head, worker or submitter pod.
- Kubernetes' own schemas, strict flavour, as the `kubernetes-validate` package ships them: the batch/v1
  CronJob (not a CRD), every pod template of every manifest, and each manifest's `metadata` (the CRDs say
  only `type: object` there).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

from kobert_ops import paths

# The oldest Kubernetes the manifests promise to work on (cluster/README.md); kubernetes-validate uses the
# newest schema it has that is not newer than this.
KUBERNETES_VERSION = "1.32"
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml",
             "RayCronJob": "ray.io_raycronjobs.yaml"}


def crd_dir() -> Path:
    return paths.require(paths.shared_dir() / "kuberay" / "crds", "KubeRay CRDs (shared/kuberay/crds)")


def strict(schema: dict) -> dict:
    """A copy of an OpenAPI v3 schema in which every object with `properties` refuses unknown fields."""
    schema = dict(schema)
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        schema["additionalProperties"] = False
    if "properties" in schema:
        schema["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            schema[key] = [strict(sub) for sub in schema[key]]
    return schema


@functools.cache
def crd_schema(kind: str, version: str, strict_fields: bool = True) -> dict:
    """The `openAPIV3Schema` of `kind` at `version` (e.g. "v1"), as its CRD in shared/ declares it."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader: the CRDs are 56k lines
    crd = yaml.load((crd_dir() / CRD_FILES[kind]).read_text(), Loader=loader)
    assert crd["spec"]["names"]["kind"] == kind
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = served["schema"]["openAPIV3Schema"]
    return strict(schema) if strict_fields else schema


def crd_errors(document: dict, strict_fields: bool = True) -> list[str]:
    """Where a KubeRay resource breaks its CRD's schema, one line per error (empty: it validates)."""
    group, version = document["apiVersion"].split("/")
    assert group == "ray.io", document["apiVersion"]
    validator = jsonschema.Draft202012Validator(crd_schema(document["kind"], version, strict_fields))
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def kubernetes_errors(document: dict) -> list[str]:
    """Where `document` breaks Kubernetes' strict schema of its kind (empty: it validates)."""
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{error.json_path}: {error.message}"]
    return []


KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """("spec", "workerGroupSpecs", 0) → "spec.workerGroupSpecs[0]"."""
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path).lstrip(".")


def pod_templates(document: dict) -> Iterator[tuple[KeyPath, dict]]:
    """(path, PodTemplateSpec) for every pod a manifest describes: head, worker groups, submitter, cron pod."""
    spec = document["spec"]
    kind = document["kind"]
    if kind == "CronJob":
        yield ("spec", "jobTemplate", "spec", "template"), spec["jobTemplate"]["spec"]["template"]
        return
    prefix: KeyPath = ("spec",)
    if kind == "RayCronJob":
        spec, prefix = spec["jobTemplate"], ("spec", "jobTemplate")
    if kind in ("RayJob", "RayCronJob"):
        if "submitterPodTemplate" in spec:
            yield (*prefix, "submitterPodTemplate"), spec["submitterPodTemplate"]
        if "rayClusterSpec" not in spec:  # a job for an existing cluster (clusterSelector)
            return
        spec, prefix = spec["rayClusterSpec"], (*prefix, "rayClusterSpec")
    yield (*prefix, "headGroupSpec", "template"), spec["headGroupSpec"]["template"]
    for index, group in enumerate(spec.get("workerGroupSpecs", [])):
        yield (*prefix, "workerGroupSpecs", index, "template"), group["template"]


def pod_template_errors(template: dict) -> list[str]:
    """Where a PodTemplateSpec breaks Kubernetes' strict pod schema (checked as a core/v1 PodTemplate)."""
    return kubernetes_errors({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "check"},
                              "template": template})


def metadata_errors(document: dict) -> list[str]:
    """Where a manifest's `metadata` breaks Kubernetes' strict ObjectMeta."""
    return kubernetes_errors({"apiVersion": "v1", "kind": "PodTemplate", "metadata": document["metadata"]})


def manifest_errors(document: dict) -> list[str]:
    """Every schema error of one manifest: its own schema (CRD or Kubernetes'), its pods, its metadata."""
    if document["apiVersion"].startswith("ray.io/"):
        errors = crd_errors(document)
    else:
        errors = kubernetes_errors(document)
    for path, template in pod_templates(document):
        errors += [f"{dotted(path)}: {error}" for error in pod_template_errors(template)]
    return errors + [f"metadata: {error}" for error in metadata_errors(document)]


def containers(document: dict) -> Iterator[tuple[KeyPath, dict]]:
    """(path, container) for every container and init container of every pod in a manifest."""
    for path, template in pod_templates(document):
        for key in ("initContainers", "containers"):
            for index, container in enumerate(template["spec"].get(key, [])):
                yield (*path, "spec", key, index), container


def with_field(document: dict, path: KeyPath, name: str, value) -> dict:
    """A deep copy of `document` with `name: value` planted in the mapping at `path`."""
    planted = copy.deepcopy(document)
    node = planted
    for key in path:
        node = node[key]
    node[name] = value
    return planted
