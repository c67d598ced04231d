"""The /ui pages, their static files, and the security headers they are sent with."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.schemas import JobStatus

__all__ = ["CSP", "install_ui"]

STATIC_DIR = Path(__file__).parent / "static"

# Scripts only from this origin and never inline: a draw that smuggled markup past escaping
# still could not run. Styles likewise come from ui.css only; the plots are SVG built in the DOM.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

router = APIRouter(prefix="/ui", include_in_schema=False)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("services.gateway.ui", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
    )


def _page(template: str, **context: object) -> HTMLResponse:
    html = _environment().get_template(template).render(**context)
    # The shell holds no data, but a cached one would outlive a forgotten key's tab.
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("")
def ui_root() -> RedirectResponse:
    """/ui is the jobs page."""
    return RedirectResponse("/ui/jobs", status_code=307)


@router.get("/jobs")
def jobs_page() -> HTMLResponse:
    """The jobs page's shell; jobs.js lists the key's jobs."""
    return _page("jobs.html.j2", page="jobs", statuses=[s.value for s in JobStatus])


@router.get("/jobs/{job_id}")
def job_page(job_id: str) -> HTMLResponse:
    """The job page's shell; job.js reads the job, its spec and its results."""
    return _page("job.html.j2", page="job", job_id=job_id)


@router.get("/jobs/{job_id}/prompt")
def prompt_page(
    job_id: str, prompt_id: Annotated[str, Query(alias="id", min_length=1, max_length=256)]
) -> HTMLResponse:
    """The prompt page's shell; prompt.js reads the prompt's draws, bounds and spec."""
    # Prompt ids are free text (slashes included), hence a query parameter, not a path segment.
    return _page("prompt.html.j2", page="prompt", job_id=job_id, prompt_id=prompt_id)


class UiHeaders:
    """ASGI middleware: the CSP and related headers on every response under /ui."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/ui" and not path.startswith("/ui/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_ui(app: FastAPI) -> None:
    """The pages, /ui/static, and the headers middleware."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.add_middleware(UiHeaders)
