"""The job browser's server side: HTML shells with no data and a strict CSP, its static files,
and the two JSON reads it adds (spec, scores). The pages in a real browser: tests/e2e/test_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.gateway.main import create_app
from services.gateway.ui.routes import CSP, STATIC_DIR
from shared.config import Settings
from shared.schemas import GreedyResult
from shared.stats import dkw_epsilon
from shared.store import Store
from tests.fixtures.finished import store_finished_job

TEMPLATES = Path(STATIC_DIR).parent / "templates"
A = {"Authorization": "Bearer key-of-a"}
B = {"Authorization": "Bearer key-of-b"}
BODY = {
    "model": "tiny",
    "prompts": [
        {"id": "q/1", "prompt": "Where is the mill?", "reference": "by the river"},
        {"id": "q2", "prompt": "And the bridge?", "reference": "stone bridge"},
    ],
    "sampling": {"n": 4, "max_tokens": 4},
    "alpha": 0.05,
}
DRAWS = [
    [("by the river", 1.0), ("no idea", 0.0), ("by the river", 1.0), ("river", 0.4)],
    [("stone", 0.5), ("stone", 0.5), ("x", 0.0), ("stone bridge", 1.0)],
]


@pytest.fixture()
def client(redis_url: str, store: Store) -> Iterator[TestClient]:
    settings = Settings(redis_url=redis_url, api_keys="team-a:key-of-a,team-b:key-of-b")
    greedy = [GreedyResult(text="no idea", score=0.0), None]
    store_finished_job(store, "job-a", BODY, DRAWS, greedy, tenant="team-a")
    with TestClient(create_app(settings)) as c:
        yield c


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def parse(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    return tags


@pytest.mark.parametrize("path", ["/ui/jobs", "/ui/jobs/job-a", "/ui/jobs/job-a/prompt?id=q%2F1"])
def test_pages_are_shells_without_key_or_data_and_send_the_csp(
    client: TestClient, path: str
) -> None:
    resp = client.get(path)  # no key: the shell is served, the data is not in it
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"
    tags = parse(resp.text)
    scripts = [a for t, a in tags.tags if t == "script"]
    assert scripts and all(a.get("src", "").startswith("/ui/static/") for a in scripts)
    assert tags.script_text.strip() == ""  # no inline script
    for tag, attrs in tags.tags:
        assert not [n for n in attrs if n.startswith("on") or n == "style"], (tag, attrs)
    for secret in ("by the river", "Where is the mill", "no idea", "stone bridge"):
        assert secret not in resp.text


def test_untrusted_ids_in_the_url_are_escaped(client: TestClient) -> None:
    payload = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    resp = client.get("/ui/jobs/job-a/prompt", params={"id": payload})
    assert resp.status_code == 200
    assert "<script>alert" not in resp.text and "<img src=x" not in resp.text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in resp.text
    assert parse(resp.text).tags.count(("img", {"src": "x", "onerror": "alert(1)"})) == 0
    resp = client.get("/ui/jobs/" + "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(3)%3E")
    assert resp.status_code == 200 and "<img src=x" not in resp.text
    assert 'data-job="&#34;&gt;&lt;img src=x onerror=alert(3)&gt;"' in resp.text


def test_root_redirects_and_static_files_are_served(client: TestClient) -> None:
    resp = client.get("/ui", follow_redirects=False)
    assert resp.status_code == 307 and resp.headers["location"] == "/ui/jobs"
    for name, kind in [("api.js", "javascript"), ("job.js", "javascript"), ("ui.css", "text/css")]:
        resp = client.get(f"/ui/static/{name}")
        assert resp.status_code == 200 and kind in resp.headers["content-type"], name
        assert resp.headers["content-security-policy"] == CSP
    assert client.get("/ui/static/nope.js").status_code == 404
    assert client.get("/ui/static/../routes.py").status_code == 404


def test_scripts_never_parse_strings_as_markup() -> None:
    """Untrusted text reaches the page through textContent / text nodes only."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function"
    )
    for js in sorted(STATIC_DIR.glob("*.js")):
        assert not sinks.search(js.read_text()), js.name
    for template in sorted(TEMPLATES.glob("*.j2")):
        text = template.read_text()
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text, template


def test_spec_and_scores_for_the_owner_only(client: TestClient) -> None:
    spec = client.get("/v1/jobs/job-a/spec", headers=A)
    assert spec.status_code == 200
    assert [p["reference"] for p in spec.json()["prompts"]] == ["by the river", "stone bridge"]
    resp = client.get("/v1/jobs/job-a/scores?prompt_id=q2&prompt_id=q%2F1", headers=A).json()
    assert resp["alpha"] == 0.05 and not resp["band_holds_under_optional_stopping"]
    assert [p["prompt_id"] for p in resp["prompts"]] == ["q2", "q/1"]  # the order asked
    assert resp["prompts"][1]["scores"] == [1.0, 0.0, 1.0, 0.4]  # sampling order
    eps = dkw_epsilon(4, 0.05, two_sided=True)  # sqrt(ln(2/0.05) / 8) = 0.6791
    assert (
        resp["prompts"][1]["band_epsilon"] == pytest.approx(eps) == pytest.approx(0.6791, abs=1e-4)
    )
    missing = client.get("/v1/jobs/job-a/scores?prompt_id=q2&prompt_id=zz", headers=A)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "prompt_id"
    too_many = "&".join(["prompt_id=q2"] * 101)
    assert client.get(f"/v1/jobs/job-a/scores?{too_many}", headers=A).status_code == 422
    assert client.get("/v1/jobs/job-a/scores", headers=A).status_code == 422
    for path in ["/v1/jobs/job-a/spec", "/v1/jobs/job-a/scores?prompt_id=q2"]:
        assert client.get(path, headers=B).status_code == 404
        assert client.get(path).status_code == 401
