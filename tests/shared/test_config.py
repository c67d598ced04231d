"""Settings: secrets stay out of repr and logs, limits are bounded, one get_settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import Settings


def test_api_keys_and_webhook_secrets_never_show_in_repr() -> None:
    s = Settings(api_keys="team-a:s3cret-key", webhook_secrets="*:hook-s3cret")
    shown = repr(s) + str(s) + s.model_dump_json()
    assert "s3cret" not in shown
    assert s.api_keys.get_secret_value() == "team-a:s3cret-key"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("PROBEVAL_MAX_N", "0"),
        ("PROBEVAL_PORT", "70000"),
        ("PROBEVAL_RETENTION_S", "-5"),
        ("PROBEVAL_CHUNK_DRAWS", "0"),
        ("PROBEVAL_ENGINE_MEMORY_FRACTION", "1.5"),
        ("PROBEVAL_ENGINE_DTYPE", "fp8"),
    ],
)
def test_an_out_of_range_limit_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert env.removeprefix("PROBEVAL_").lower() in str(info.value)


def test_a_worker_ttl_below_the_heartbeat_is_refused() -> None:
    with pytest.raises(ValidationError, match="worker_ttl_s"):
        Settings(heartbeat_s=10, worker_ttl_s=5)


def test_one_function_named_get_settings() -> None:
    import services.gateway.deps as deps

    assert not hasattr(deps, "get_settings")
