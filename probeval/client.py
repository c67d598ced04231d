"""A Python client for the probeval gateway, on httpx, typed with ``shared.schemas``.

>>> from probeval.client import Client
>>> with Client() as c:  # PROBEVAL_URL and PROBEVAL_API_KEY from the environment
...     job = c.submit({"model": "tiny", "prompts": [...], "sampling": {"n": 256}})
...     c.wait(job.id, progress=True)
...     results = c.results(job.id)

Retries: a 429 is retried after its ``Retry-After`` (the request was refused, so repeating it is
safe for every method); a connection or timeout error is retried, with exponential back-off,
only for idempotent calls (GET, DELETE). ``wait`` follows the job's Server-Sent Events stream,
so it does not poll.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse
from tqdm import tqdm

from shared.config import ClientSettings
from shared.schemas import (
    DrawRecord,
    JobAccepted,
    JobCreate,
    JobEvent,
    JobList,
    JobListItem,
    JobResults,
    JobStatus,
    JobView,
    RescoreRequest,
)

ExportFormat = Literal["jsonl", "parquet", "csv"]
EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "parquet", "csv")
IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})


class ApiError(Exception):
    """An error answer of the gateway, in its one shape."""

    def __init__(self, status: int, code: str, message: str, param: str | None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.param = status, code, message, param


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before repeating a refused or failed request."""

    retries: int = 5
    backoff_s: float = 0.5
    max_wait_s: float = 30.0

    def wait_s(self, attempt: int, response: httpx.Response | None) -> float:
        """Retry-After of a 429 when given (seconds), else exponential back-off."""
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.strip().isdigit():
                return min(float(after), self.max_wait_s)
        return float(min(self.backoff_s * 2**attempt, self.max_wait_s))

    def should_retry(self, method: str, attempt: int, response: httpx.Response | None) -> bool:
        if attempt >= self.retries:
            return False
        if response is None:
            return method in IDEMPOTENT
        return response.status_code == 429


def _error(resp: httpx.Response) -> ApiError:
    try:
        err = resp.json()["error"]
        return ApiError(resp.status_code, err["code"], err["message"], err.get("param"))
    except (ValueError, KeyError, TypeError):
        return ApiError(resp.status_code, "http_error", resp.text[:500], None)


def _check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        raise _error(resp)
    return resp


def _spec(spec: JobCreate | Mapping[str, Any]) -> dict[str, Any]:
    model = spec if isinstance(spec, JobCreate) else JobCreate.model_validate(dict(spec))
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _list_params(
    status: JobStatus | str | None, model: str | None, limit: int, after: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    for key, value in (("status", status), ("model", model), ("after", after)):
        if value is not None:
            params[key] = str(value)
    return params


def _rescore_body(scorer: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    body = RescoreRequest.model_validate({"scorer": dict(scorer), **options})
    return body.model_dump(mode="json", exclude_none=True)


def _base_and_headers(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    env = ClientSettings()
    key = (
        api_key
        if api_key is not None
        else (env.api_key.get_secret_value() if env.api_key else None)
    )
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return (base_url or env.url).rstrip("/"), headers


class ProgressBar:
    """A tqdm bar in draws with rate and ETA, fed with job views or events."""

    def __init__(self, job_id: str, enabled: bool) -> None:
        self.bar: tqdm[Any] | None = None
        self.job_id = job_id
        self.enabled = enabled

    def update(self, status: JobStatus, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, unit="draw", desc=self.job_id[:8], dynamic_ncols=True)
        self.bar.n = done
        self.bar.set_postfix_str(status.value, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Client:
    """Synchronous client. ``base_url`` defaults to PROBEVAL_URL, ``api_key`` to
    PROBEVAL_API_KEY."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base, headers = _base_and_headers(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self.http = httpx.Client(
            base_url=base, headers=headers, timeout=timeout_s, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                resp = self.http.request(method, path, **kw)
            except httpx.TransportError:
                if not self.retry.should_retry(method, attempt, None):
                    raise
                time.sleep(self.retry.wait_s(attempt, None))
            else:
                if not self.retry.should_retry(method, attempt, resp):
                    return _check(resp)
                time.sleep(self.retry.wait_s(attempt, resp))
            attempt += 1

    # ---- jobs ---------------------------------------------------------------------------------

    def submit(self, spec: JobCreate | Mapping[str, Any]) -> JobAccepted:
        return JobAccepted.model_validate(
            self._request("POST", "/v1/jobs", json=_spec(spec)).json()
        )

    def get(self, job_id: str) -> JobView:
        return JobView.model_validate(self._request("GET", f"/v1/jobs/{job_id}").json())

    def list(
        self,
        *,
        status: JobStatus | str | None = None,
        model: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> JobList:
        params = _list_params(status, model, limit, after)
        return JobList.model_validate(self._request("GET", "/v1/jobs", params=params).json())

    def iter_jobs(
        self, *, status: JobStatus | str | None = None, model: str | None = None
    ) -> Iterator[JobListItem]:
        """Every matching job, newest first, page by page."""
        after: str | None = None
        while True:
            page = self.list(status=status, model=model, limit=200, after=after)
            yield from page.jobs
            if page.next_after is None:
                return
            after = page.next_after

    def events(self, job_id: str) -> Iterator[ServerSentEvent]:
        """The job's Server-Sent Events: `progress` events, then one `end` event."""
        with connect_sse(self.http, "GET", f"/v1/jobs/{job_id}/events", timeout=None) as src:
            _check_stream(src.response)
            yield from src.iter_sse()

    def wait(
        self, job_id: str, *, progress: bool = False, timeout_s: float | None = None
    ) -> JobView:
        """Block until the job has ended; with ``progress``, draw a bar (tqdm) in draws with
        rate and ETA. Reconnects to the event stream if the connection drops."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        bar = ProgressBar(job_id, progress)
        try:
            while True:
                try:
                    for event in self.events(job_id):
                        done = _on_event(event, bar)
                        if done is not None:
                            return done
                except httpx.TransportError:
                    pass  # the gateway went away: reconnect below
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} has not ended after {timeout_s} s")
                view = self.get(job_id)
                if view.status.terminal:
                    return view
                time.sleep(1.0)
        finally:
            bar.close()

    def results(self, job_id: str) -> JobResults:
        return JobResults.model_validate(self._request("GET", f"/v1/jobs/{job_id}/results").json())

    def samples(self, job_id: str) -> Iterator[DrawRecord]:
        """Every stored draw, streamed from samples.jsonl."""
        with self.http.stream("GET", f"/v1/jobs/{job_id}/samples.jsonl", timeout=None) as resp:
            _check_stream(resp)
            for line in resp.iter_lines():
                if line:
                    yield DrawRecord.model_validate(json.loads(line))

    def export(
        self,
        job_id: str,
        path: str | Path,
        *,
        format: ExportFormat = "jsonl",
        table: Literal["draws", "results"] = "draws",
    ) -> Path:
        """Download an export to ``path``: jsonl (every draw), parquet (``table`` draws or
        results) or csv (the results table). Written to a temporary name, then renamed."""
        route, params = _export_route(job_id, format, table)
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        with self.http.stream("GET", route, params=params, timeout=None) as resp:
            _check_stream(resp)
            with partial.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        partial.replace(target)
        return target

    def cancel(self, job_id: str, *, purge: bool = False) -> JobView | None:
        """Cancel a running job (its view); with ``purge``, delete it and its data (None)."""
        params = {"purge": "true"} if purge else None
        resp = self._request("DELETE", f"/v1/jobs/{job_id}", params=params)
        return None if resp.status_code == 204 else JobView.model_validate(resp.json())

    def rescore(self, job_id: str, scorer: Mapping[str, Any], **options: Any) -> JobAccepted:
        """A new job scoring ``job_id``'s stored draws with ``scorer`` (alpha, thresholds,
        quantiles, ed_lambda, callback_url as keyword options)."""
        body = _rescore_body(scorer, options)
        resp = self._request("POST", f"/v1/jobs/{job_id}/rescore", json=body)
        return JobAccepted.model_validate(resp.json())


class AsyncClient:
    """The same calls as ``Client``, awaitable (httpx.AsyncClient)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base, headers = _base_and_headers(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self.http = httpx.AsyncClient(
            base_url=base, headers=headers, timeout=timeout_s, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                resp = await self.http.request(method, path, **kw)
            except httpx.TransportError:
                if not self.retry.should_retry(method, attempt, None):
                    raise
                await asyncio.sleep(self.retry.wait_s(attempt, None))
            else:
                if not self.retry.should_retry(method, attempt, resp):
                    return _check(resp)
                await asyncio.sleep(self.retry.wait_s(attempt, resp))
            attempt += 1

    async def submit(self, spec: JobCreate | Mapping[str, Any]) -> JobAccepted:
        resp = await self._request("POST", "/v1/jobs", json=_spec(spec))
        return JobAccepted.model_validate(resp.json())

    async def get(self, job_id: str) -> JobView:
        return JobView.model_validate((await self._request("GET", f"/v1/jobs/{job_id}")).json())

    async def list(
        self,
        *,
        status: JobStatus | str | None = None,
        model: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> JobList:
        params = _list_params(status, model, limit, after)
        return JobList.model_validate(
            (await self._request("GET", "/v1/jobs", params=params)).json()
        )

    async def events(self, job_id: str) -> AsyncIterator[ServerSentEvent]:
        async with aconnect_sse(self.http, "GET", f"/v1/jobs/{job_id}/events", timeout=None) as src:
            _check_stream(src.response)
            async for event in src.aiter_sse():
                yield event

    async def wait(
        self, job_id: str, *, progress: bool = False, timeout_s: float | None = None
    ) -> JobView:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        bar = ProgressBar(job_id, progress)
        try:
            while True:
                try:
                    async for event in self.events(job_id):
                        done = _on_event(event, bar)
                        if done is not None:
                            return done
                except httpx.TransportError:
                    pass
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} has not ended after {timeout_s} s")
                view = await self.get(job_id)
                if view.status.terminal:
                    return view
                await asyncio.sleep(1.0)
        finally:
            bar.close()

    async def results(self, job_id: str) -> JobResults:
        resp = await self._request("GET", f"/v1/jobs/{job_id}/results")
        return JobResults.model_validate(resp.json())

    async def samples(self, job_id: str) -> AsyncIterator[DrawRecord]:
        route = f"/v1/jobs/{job_id}/samples.jsonl"
        async with self.http.stream("GET", route, timeout=None) as resp:
            await _acheck_stream(resp)
            async for line in resp.aiter_lines():
                if line:
                    yield DrawRecord.model_validate(json.loads(line))

    async def export(
        self,
        job_id: str,
        path: str | Path,
        *,
        format: ExportFormat = "jsonl",
        table: Literal["draws", "results"] = "draws",
    ) -> Path:
        route, params = _export_route(job_id, format, table)
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        async with self.http.stream("GET", route, params=params, timeout=None) as resp:
            await _acheck_stream(resp)
            with partial.open("wb") as out:
                async for chunk in resp.aiter_bytes():
                    out.write(chunk)
        partial.replace(target)
        return target

    async def cancel(self, job_id: str, *, purge: bool = False) -> JobView | None:
        params = {"purge": "true"} if purge else None
        resp = await self._request("DELETE", f"/v1/jobs/{job_id}", params=params)
        return None if resp.status_code == 204 else JobView.model_validate(resp.json())

    async def rescore(self, job_id: str, scorer: Mapping[str, Any], **options: Any) -> JobAccepted:
        body = _rescore_body(scorer, options)
        resp = await self._request("POST", f"/v1/jobs/{job_id}/rescore", json=body)
        return JobAccepted.model_validate(resp.json())


def _export_route(job_id: str, format: str, table: str) -> tuple[str, dict[str, str]]:
    if format == "jsonl":
        return f"/v1/jobs/{job_id}/samples.jsonl", {}
    if format == "parquet":
        return f"/v1/jobs/{job_id}/export.parquet", {"table": table}
    if format == "csv":
        return f"/v1/jobs/{job_id}/results.csv", {}
    raise ValueError(f"format: {format!r} is not one of {', '.join(EXPORT_FORMATS)}")


def _check_stream(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        resp.read()
        raise _error(resp)


async def _acheck_stream(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        await resp.aread()
        raise _error(resp)


def _on_event(event: ServerSentEvent, bar: ProgressBar) -> JobView | None:
    """Feed the bar; the final view on the `end` event."""
    if event.event == "progress":
        data = JobEvent.model_validate_json(event.data)
        bar.update(data.status, data.progress.samples_done, data.progress.samples_total)
    elif event.event == "end":
        view = JobView.model_validate_json(event.data)
        bar.update(view.status, view.progress.samples_done, view.progress.samples_total)
        return view
    elif event.event == "error":
        data = json.loads(event.data)["error"]
        raise ApiError(404, data["code"], data["message"], data.get("param"))
    return None
