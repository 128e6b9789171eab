"""The recipes for real clusters (cluster-recipes/), validated offline.

Kubernetes core objects are checked against their OpenAPI schemas (`kubernetes-validate`). No package ships
KubeRay's CRDs, so RayCluster and RayJob are checked against the structure the operator's Go types declare
(ray-operator/apis/ray/v1/raycluster_types.go and rayjob_types.go, KubeRay 1.5): the fields without `omitempty`
are required, unknown keys are refused, enums hold. The RayJob runs exactly what `mritune submit` sends for the
command docs/cluster.md documents.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from mritune.platform.run.jobs import search_entrypoint

RECIPES = Path(__file__).resolve().parents[1] / "cluster-recipes"
CLUSTER_DOC = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"
KUBERNETES_VERSION = "1.30.0"

# Field names per KubeRay v1 struct: (required, optional). Required = no `omitempty` in the json tag.
RAY_CLUSTER_SPEC = ({"headGroupSpec"}, {
    "upgradeStrategy", "authOptions", "suspend", "managedBy", "autoscalerOptions", "headServiceAnnotations",
    "enableInTreeAutoscaling", "gcsFaultToleranceOptions", "historyServerOptions", "networkPolicy", "tlsOptions",
    "rayVersion", "workerGroupSpecs"})
HEAD_GROUP_SPEC = ({"template", "rayStartParams"}, {
    "headService", "enableIngress", "ingressOptions", "resources", "labels", "serviceType"})
WORKER_GROUP_SPEC = ({"groupName", "minReplicas", "maxReplicas", "rayStartParams", "template"}, {
    "suspend", "replicas", "idleTimeoutSeconds", "priority", "resources", "labels", "scaleStrategy", "numOfHosts"})
AUTH_OPTIONS = (set(), {"enableK8sTokenAuth", "secretName", "mode"})
AUTOSCALER_OPTIONS = (set(), {"resources", "image", "imagePullPolicy", "securityContext", "idleTimeoutSeconds",
                              "upscalingMode", "version", "env", "envFrom", "volumeMounts", "command", "args"})
RAY_JOB_SPEC = (set(), {
    "activeDeadlineSeconds", "backoffLimit", "rayClusterSpec", "submitterPodTemplate", "metadata",
    "clusterSelector", "submitterConfig", "managedBy", "deletionStrategy", "entrypoint", "runtimeEnvYAML", "jobId",
    "submissionMode", "entrypointResources", "entrypointNumCpus", "entrypointNumGpus", "ttlSecondsAfterFinished",
    "preRunningDeadlineSeconds", "shutdownAfterJobFinishes", "suspend"})
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}
AUTH_MODES = {"disabled", "token"}


def load_all(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def check_fields(where: str, value: dict, fields: tuple[set[str], set[str]]) -> list[str]:
    required, optional = fields
    problems = [f"{where}.{key}: required" for key in sorted(required - set(value))]
    problems += [f"{where}.{key}: unknown field" for key in sorted(set(value) - required - optional)]
    return problems


def check_pod_template(where: str, template: dict) -> list[str]:
    """The pod template of a group: a valid core PodTemplateSpec with at least one container."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                                      "template": template}, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{where}: {exc.message}"]
    return [] if template.get("spec", {}).get("containers") else [f"{where}.spec.containers: empty"]


def check_ray_cluster_spec(where: str, spec: dict) -> list[str]:
    problems = check_fields(where, spec, RAY_CLUSTER_SPEC)
    problems += check_fields(f"{where}.authOptions", spec.get("authOptions", {}), AUTH_OPTIONS)
    problems += check_fields(f"{where}.autoscalerOptions", spec.get("autoscalerOptions", {}), AUTOSCALER_OPTIONS)
    if spec.get("authOptions", {}).get("mode", "token") not in AUTH_MODES:
        problems.append(f"{where}.authOptions.mode: not one of {sorted(AUTH_MODES)}")
    head = spec.get("headGroupSpec", {})
    problems += check_fields(f"{where}.headGroupSpec", head, HEAD_GROUP_SPEC)
    problems += check_pod_template(f"{where}.headGroupSpec.template", head.get("template", {}))
    for index, group in enumerate(spec.get("workerGroupSpecs", [])):
        at = f"{where}.workerGroupSpecs[{index}]"
        problems += check_fields(at, group, WORKER_GROUP_SPEC)
        problems += check_pod_template(f"{at}.template", group.get("template", {}))
        if not 0 <= group.get("minReplicas", 0) <= group.get("maxReplicas", 0):
            problems.append(f"{at}: needs 0 <= minReplicas <= maxReplicas")
    return problems


def gpu_groups(spec: dict) -> list[dict]:
    def asks_gpu(group: dict) -> bool:
        containers = group["template"]["spec"]["containers"]
        return any("nvidia.com/gpu" in container.get("resources", {}).get("limits", {}) for container in containers)

    return [group for group in spec.get("workerGroupSpecs", []) if asks_gpu(group)]


def test_every_recipe_parses():
    files = sorted(RECIPES.rglob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        assert load_all(path), path


def test_kubernetes_core_objects_match_their_schemas():
    import kubernetes_validate

    documents = load_all(RECIPES / "kubernetes" / "mlflow-postgres.yaml")
    assert {document["kind"] for document in documents} == {"ConfigMap", "Service", "StatefulSet", "Deployment"}
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    deployment = next(document for document in documents if document["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--app-name=basic-auth" in args and any(arg.startswith("--artifacts-destination=") for arg in args)
    assert any(arg.startswith("--backend-store-uri=postgresql://") for arg in args)
    # Secrets only by reference: no env entry of a password or key carries a literal value.
    env = [entry for document in documents if document["kind"] in ("StatefulSet", "Deployment")
           for container in document["spec"]["template"]["spec"]["containers"] for entry in container.get("env", [])]
    assert all("value" not in entry for entry in env if entry["name"].endswith(("PASSWORD", "SECRET_KEY", "KEY_ID")))


def test_the_structural_check_catches_what_the_operator_would_refuse():
    """The hand-written check must fail on a spec the operator refuses, else passing it proves nothing."""
    spec = load_all(RECIPES / "kuberay" / "raycluster.yaml")[0]["spec"]
    broken = yaml.safe_load(yaml.safe_dump(spec))
    del broken["workerGroupSpecs"][0]["minReplicas"]
    broken["authOptions"]["mode"] = "password"
    broken["headGroupSpec"]["rayStartParam"] = {}
    broken["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = [1]
    problems = "\n".join(check_ray_cluster_spec("spec", broken))
    for expected in ("minReplicas: required", "authOptions.mode", "rayStartParam: unknown field",
                     "workerGroupSpecs[0].template"):
        assert expected in problems


@pytest.mark.parametrize("kind", ["RayCluster", "RayJob"])
def test_kuberay_objects_have_token_auth_and_gpu_workers_from_zero(kind):
    path = RECIPES / "kuberay" / f"{kind.lower()}.yaml"
    (document,) = load_all(path)
    assert document["apiVersion"] == "ray.io/v1" and document["kind"] == kind and document["metadata"]["name"]
    if kind == "RayJob":
        assert check_fields("spec", document["spec"], RAY_JOB_SPEC) == []
        assert document["spec"]["submissionMode"] in SUBMISSION_MODES
        spec = document["spec"]["rayClusterSpec"]
    else:
        spec = document["spec"]
    assert check_ray_cluster_spec("spec", spec) == []
    assert spec["authOptions"]["mode"] == "token" and spec["enableInTreeAutoscaling"] is True
    (gpu,) = gpu_groups(spec)
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] >= 1
    container = gpu["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"]


def test_rayjob_runs_what_the_documented_submit_command_sends():
    block = re.search(r"<!-- rayjob-submit -->\s*```bash\n(.*?)```", CLUSTER_DOC.read_text(), re.S)
    assert block, "docs/cluster.md lacks the submit command marked <!-- rayjob-submit -->"
    words = shlex.split(block.group(1).replace("\\\n", " "))
    assert words[:2] == ["mritune", "submit"]
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    tracking_uri = words[words.index("--tracking-uri") + 1]
    expected = search_entrypoint(Path(words[2]).name, overrides, tracking_uri)
    (job,) = load_all(RECIPES / "kuberay" / "rayjob.yaml")
    assert shlex.split(job["spec"]["entrypoint"]) == shlex.split(expected)


def test_cluster_launcher_starts_every_node_with_token_auth_and_gpu_workers_from_zero():
    config = load_all(RECIPES / "cluster-launcher" / "aws-gpu.yaml")[0]
    assert {"cluster_name", "provider", "available_node_types", "head_node_type"} <= set(config)
    assert config["head_node_type"] in config["available_node_types"]
    starts = [command for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]
              if "ray start" in command]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in command for command in starts)
    assert any(target.endswith(".ray/auth_token") for target in config["file_mounts"])
    workers = [node for name, node in config["available_node_types"].items() if name != config["head_node_type"]]
    assert workers and all(node["min_workers"] == 0 for node in workers)


def test_dockerfile_builds_tensorflow_gpu_and_mritune():
    text = (RECIPES / "Dockerfile").read_text()
    assert re.search(r"^FROM rayproject/ray:[\d.]+-py3\d+-gpu$", text, re.M)
    assert "tensorflow[and-cuda]" in text and "pip install --no-cache-dir ." in text
