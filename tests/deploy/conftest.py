"""Fixtures of the deployment checks (no Docker engine or cluster: static files only)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_helpers import ROOT, Stage, load_yaml, parse_dockerfile


@pytest.fixture(scope="session")
def dockerfile_stages() -> dict[str, Stage]:
    return {s.name: s for s in parse_dockerfile((ROOT / "Dockerfile").read_text())}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return data
