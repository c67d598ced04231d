"""Webhooks: which callback addresses are allowed, how a delivery is signed, and the one place
where a job's end queues its delivery.

Server-side request forgery: a callback host is resolved and every address it resolves to must
be public (``ipaddress``'s ``is_global``: no loopback, private, link-local, shared, reserved or
multicast address, and none of the cloud metadata addresses) unless it lies in
``callback_allowed_networks``. The check runs at submission and again before every attempt, so
a name that later resolves elsewhere is refused at delivery. Redirects are never followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import redis

from shared import keys
from shared.config import Settings
from shared.errors import InvalidInput
from shared.queues import enqueue_archive, enqueue_callback
from shared.schemas import CallbackDelivery, ErrorInfo, JobStatus
from shared.store import Store

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that must stay unreachable even when their range is allowed for receivers
# (169.254.169.254 is link-local; the others are in ranges an operator might allow).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
SIGNATURE_HEADER = "probeval-signature"
DELIVERY_HEADER = "probeval-delivery"


def allowed_networks(settings: Settings) -> list[IpNetwork]:
    """The networks of ``callback_allowed_networks``; a bad entry names the setting."""
    nets: list[IpNetwork] = []
    for n, text in enumerate(t.strip() for t in settings.callback_allowed_networks.split(",")):
        if not text:
            continue
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise InvalidInput(
                f"PROBEVAL_CALLBACK_ALLOWED_NETWORKS entry {n}: {exc}",
                param="callback_allowed_networks",
            ) from exc
    return nets


def webhook_secrets(settings: Settings) -> dict[str, str]:
    """tenant -> secret from ``webhook_secrets`` (``*`` for every other tenant)."""
    secrets: dict[str, str] = {}
    for n, pair in enumerate(
        p.strip() for p in settings.webhook_secrets.get_secret_value().split(",")
    ):
        if not pair:
            continue
        tenant, sep, secret = pair.partition(":")
        if not sep or not tenant or not secret:
            raise InvalidInput(
                f"PROBEVAL_WEBHOOK_SECRETS entry {n}: expected tenant:secret",
                param="webhook_secrets",
            )
        secrets[tenant] = secret
    return secrets


def secret_for(settings: Settings, tenant: str) -> str | None:
    """The tenant's webhook signing secret, else the ``*`` one; None: webhooks are refused."""
    secrets = webhook_secrets(settings)
    return secrets.get(tenant) or secrets.get("*")


def _refusal(address: IpAddress, nets: list[IpNetwork]) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if any(address in net for net in nets):
        return None
    if address.is_global:
        return None
    kind = (
        "loopback"
        if address.is_loopback
        else "link-local"
        if address.is_link_local
        else "private"
        if address.is_private
        else "non-public"
    )
    return f"a {kind} address"


def check_callback_address(url: str, settings: Settings) -> None:
    """Resolve the URL's host and refuse it unless every address is public or allowed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(
            f"callback_url: host {host!r} does not resolve ({exc})", param="callback_url"
        ) from exc
    nets = allowed_networks(settings)
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        why = _refusal(address, nets)
        if why is not None:
            raise InvalidInput(
                f"callback_url: host {host!r} resolves to {address}, {why}; allowed are public "
                "addresses and PROBEVAL_CALLBACK_ALLOWED_NETWORKS "
                f"({settings.callback_allowed_networks or 'empty'})",
                param="callback_url",
            )


def check_callback(url: str, settings: Settings, tenant: str) -> None:
    """Everything a submission with ``callback_url`` must satisfy (422 naming the field)."""
    if secret_for(settings, tenant) is None:
        raise InvalidInput(
            "callback_url: webhooks are signed, and PROBEVAL_WEBHOOK_SECRETS has no secret "
            "for this tenant (nor a `*` entry)",
            param="callback_url",
        )
    check_callback_address(url, settings)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``probeval-signature`` header: ``t=<unix s>,v1=<hex HMAC-SHA256(secret, "t.body")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance_s: float = 300) -> bool:
    """What a receiver does: recompute the MAC, compare in constant time, reject old stamps."""
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(
        sign(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1')}"
    )


def set_status_and_notify(
    store: Store,
    rq: redis.Redis,
    settings: Settings,
    job_id: str,
    new: JobStatus,
    *,
    allowed_from: Iterable[JobStatus],
    error: ErrorInfo | None = None,
) -> JobStatus | None:
    """``Store.set_status``, and when the job has just ended, queue its webhook and the move
    of its draws to the archive. Only the caller whose compare-and-set moved the job to a
    terminal status queues, and a marker set once per job guards each queueing too: one
    delivery and one archiving task per job."""
    old = store.set_status(job_id, new, allowed_from=allowed_from, error=error)
    if old is not None and new.terminal:
        queue_delivery(store, rq, settings, job_id)
        queue_archive(store, rq, settings, job_id)
    return old


def queue_archive(store: Store, rq: redis.Redis, settings: Settings, job_id: str) -> bool:
    """Queue the job's archiving task (``archive_after_s`` from now) unless it was; True if
    queued."""
    if not store.r.hsetnx(keys.job(job_id), "archive_queued", "1"):
        return False
    enqueue_archive(rq, job_id, settings)
    return True


def queue_delivery(store: Store, rq: redis.Redis, settings: Settings, job_id: str) -> bool:
    """Queue the job's delivery if it has a callback and none was queued; True if queued."""
    record = keys.job(job_id)
    if not store.r.hget(record, "callback_url"):
        return False
    if not store.r.hsetnx(record, "callback_queued", "1"):
        return False
    store.r.hset(record, "callback_state", CallbackDelivery.pending.value)
    enqueue_callback(rq, job_id, settings)
    return True
