"""API keys and tenants. Keys are held only as SHA-256 digests and compared in constant time;
every job belongs to the tenant whose key created it."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from pathlib import Path

from shared.config import Settings
from shared.errors import InvalidInput

ANONYMOUS = ""


def digest(key: str) -> str:
    """The sha256 hex of an API key: only digests are kept in memory and compared."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyRing:
    """tenant <- sha256(key); empty when auth is off."""

    def __init__(self, digests: dict[str, str]) -> None:
        self._digests = digests  # digest -> tenant

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        digests: dict[str, str] = {}
        for n, pair in enumerate(
            p.strip() for p in settings.api_keys.get_secret_value().split(",")
        ):
            if not pair:
                continue
            tenant, sep, key = pair.partition(":")
            if not sep or not tenant or not key:
                raise InvalidInput(
                    f"PROBEVAL_API_KEYS entry {n}: expected tenant:key", param="api_keys"
                )
            digests[digest(key)] = tenant
        if settings.api_keys_file:
            path = Path(settings.api_keys_file)
            for line_no, line in enumerate(path.read_text().splitlines(), start=1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split()
                if len(parts) != 2 or len(parts[1]) != 64:
                    raise InvalidInput(
                        f"{path}:{line_no}: expected `tenant sha256-hex-of-key`",
                        param="api_keys_file",
                    )
                digests[parts[1].lower()] = parts[0]
        return cls(digests)

    def tenant_for(self, key: str) -> str | None:
        """The key's tenant, or None. Every stored digest is compared, in constant time each."""
        wanted = digest(key)
        found: str | None = None
        for stored, tenant in self._digests.items():
            if hmac.compare_digest(stored, wanted):
                found = tenant
        return found


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (so serving without API keys is safe there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
