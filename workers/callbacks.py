"""The webhook delivery task (queue ``probeval-callbacks``, served by scorer workers).

One attempt per run: POST the job view, signed, to the job's callback_url. A failed attempt
raises, and RQ re-runs the task after the next wait of ``callback_retry_intervals`` (its
scheduler runs in the scorer); the last one marks the delivery failed. The queue is served by
the scorer because deliveries are short, CPU-free and rare (one per job), and every deployment
already runs a scorer; they go ahead of scoring chunks so a job's end is not reported late.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from rq import get_current_job

from shared import keys
from shared.callbacks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    check_callback_address,
    secret_for,
    sign,
)
from shared.errors import InvalidInput, NotFound
from shared.schemas import CallbackDelivery
from workers.runtime import Runtime

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; RQ retries while waits are left."""


def _last_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def deliver_callback(rt: Runtime, job_id: str) -> dict[str, Any]:
    """RQ task: POST a job's signed final view to its callback_url once; a failure retries."""
    store = rt.store
    try:
        job = store.get_job(job_id)
    except NotFound:
        return {"skipped": "job deleted"}
    record = keys.job(job_id)
    if job.callback is None:
        return {"skipped": "no callback"}
    if job.callback.state == CallbackDelivery.delivered:
        return {"skipped": "already delivered"}
    url = job.callback.url
    attempts = int(store.r.hincrby(record, "callback_attempts", 1))
    try:
        check_callback_address(url, rt.settings)
    except InvalidInput as exc:
        # The host now resolves somewhere it must not: never retried.
        store.r.hset(
            record,
            mapping={
                "callback_state": CallbackDelivery.failed.value,
                "callback_error": exc.message,
            },
        )
        return {"refused": exc.message}
    secret = secret_for(rt.settings, job.tenant)
    if secret is None:
        message = "no webhook secret for the job's tenant any more (PROBEVAL_WEBHOOK_SECRETS)"
        store.r.hset(
            record,
            mapping={"callback_state": CallbackDelivery.failed.value, "callback_error": message},
        )
        return {"refused": message}
    body = store.get_job(job_id).view().model_dump_json().encode()
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        DELIVERY_HEADER: job_id,
    }
    try:
        with httpx.Client(timeout=rt.settings.callback_timeout_s, follow_redirects=False) as c:
            resp = c.post(url, content=body, headers=headers)
        if not 200 <= resp.status_code < 300:
            raise DeliveryFailed(f"HTTP {resp.status_code} from the receiver")
    except (httpx.HTTPError, DeliveryFailed) as exc:
        error = f"attempt {attempts}: {type(exc).__name__}: {exc}"[:500]
        final = _last_attempt()
        store.r.hset(
            record,
            mapping={
                "callback_error": error,
                "callback_state": (
                    CallbackDelivery.failed if final else CallbackDelivery.pending
                ).value,
            },
        )
        if final:
            log.warning("webhook of job %s failed for good: %s", job_id, error)
            return {"failed": error}
        raise DeliveryFailed(error) from exc
    store.r.hset(
        record,
        mapping={
            "callback_state": CallbackDelivery.delivered.value,
            "callback_delivered_at": repr(time.time()),
            "callback_error": "",
        },
    )
    return {"delivered": attempts}
