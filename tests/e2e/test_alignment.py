"""The alignment case end to end with real processes: redis-server, a gateway, a scorer, a vLLM
sampler for the chat model and one for the judge (models/tiny-chat, models/tiny-judge).

Reference values come from Hugging Face transformers on the same checkpoints, in float32:
greedy generation of the chat-template-rendered prompt, and one forward pass of the judge on the
rendered judge prompt (normalised probability of the labels' first tokens). The bounds must equal
`probeval bounds` on the stored scores.

Every process of this stack also sees a throwaway scorer package installed (with pip, into a
target folder on their PYTHONPATH, so that no other process on the machine sees it)
through the ``probeval.scorers`` entry point; a gateway started without it refuses its name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probeval.local import (
    ProcessGroup,
    free_port,
    start_gateway,
    start_redis,
    start_sampler,
    start_scorer,
)
from tests.fixtures.judged_chat import (
    CHAT_DIR,
    JUDGE_DIR,
    assert_bounds_equal_cli,
    assert_matches_transformers,
    chat_and_judge_stack,
    chat_prompts,
    judge_spec,
    run_judged_chat_job,
)
from tests.fixtures.stacks import CPU_ENGINE_ENV, Stack, requires_vllm

pytestmark = [pytest.mark.slow, requires_vllm]

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SCORER = "word_present"


def build_plugin(target: Path, source: Path) -> None:
    """A scorer package with an entry point, installed by pip into ``target``."""
    source.mkdir(parents=True)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "probeval-test-scorer"
            version = "0.1.0"

            [project.entry-points."probeval.scorers"]
            {PLUGIN_SCORER} = "probeval_test_scorer:definition"
            """
        )
    )
    (source / "probeval_test_scorer.py").write_text(
        textwrap.dedent(
            f'''
            """A third-party scorer: 1 when the draw contains `word`, else 0."""
            from pydantic import BaseModel, ConfigDict, Field

            from shared.scorers import ScorerDefinition


            class Options(BaseModel):
                model_config = ConfigDict(extra="forbid", strict=True)
                word: str = Field(min_length=1, description="The word to look for.")


            def make(options):
                return lambda text, reference: float(options.word in text)


            definition = ScorerDefinition(
                name="{PLUGIN_SCORER}",
                options=Options,
                factory="probeval_test_scorer:make",
                description="1 when the draw contains `word`.",
            )
            '''
        )
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def alignment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("alignment")
    plugin = root / "plugin-site"
    build_plugin(plugin, root / "plugin-src")
    group = ProcessGroup(root / "logs")
    try:
        redis_url = start_redis(group, root / "redis", free_port())
        env = {"PROBEVAL_REDIS_URL": redis_url, **CPU_ENGINE_ENV}
        path = os.pathsep.join([str(ROOT), str(plugin), os.environ.get("PYTHONPATH", "")])
        with_plugin = {**env, "PYTHONPATH": path}
        base = start_gateway(group, "127.0.0.1", free_port(), with_plugin)
        start_scorer(group, with_plugin)
        # Every process that reads a job validates its scorer, so samplers need the package too.
        start_sampler(group, str(CHAT_DIR), with_plugin, name="tiny-chat")
        start_sampler(group, str(JUDGE_DIR), with_plugin, name="tiny-judge", proc_name="judge")
        yield chat_and_judge_stack(group, base, env)
    finally:
        group.stop()


def judge_case() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    # Two harmful requests that leak often, one that never does, and a benign one.
    return chat_prompts(0, 1, 6, -1), judge_spec()


def all_samples(c: Any, job_id: str, prompt_id: str) -> dict[str, Any]:
    page = c.get(
        f"/v1/jobs/{job_id}/samples", params={"prompt_id": prompt_id, "limit": 1000}
    ).json()
    return dict(page)


def test_judged_chat_job_equals_transformers_and_probeval_bounds(
    alignment: Stack, tmp_path: Path
) -> None:
    prompts, judge = judge_case()
    n = 32
    results, pages = run_judged_chat_job(alignment, prompts, judge, n)
    assert results["judge"]["judge_model"] == "tiny-judge"
    assert results["judge"]["labels"] == judge["labels"]
    assert_matches_transformers(results, pages, prompts, judge, n)
    assert_bounds_equal_cli(results, pages, prompts, tmp_path)
    # The shipped model refuses these harmful requests greedily but is judged harmful on some
    # draws of the first two (their trained rates are 0.3 and 0.2).
    by_id = {p["id"]: p for p in results["prompts"]}
    for p in prompts[:3]:
        assert by_id[p["id"]]["greedy"]["score"] < 0.5
    assert any(s["score"] > 0.5 for s in pages[prompts[0]["id"]]["samples"])


def test_samplers_register_templates_and_the_gateway_checks_labels_with_the_judges_tokenizer(
    alignment: Stack,
) -> None:
    prompts, judge = judge_case()
    with alignment.client() as c:
        models = {m["name"]: m for m in c.get("/v1/models").json()["models"]}
        assert models["tiny-chat"]["chat_template"] and models["tiny-judge"]["chat_template"]
        scorer = {"name": "judge", "judge_model": "tiny-judge", "template": judge["template"]}
        # "yes" is one token of the shipped tokenizer, so "yes!" starts with the same token.
        resp = c.post(
            "/v1/jobs",
            json={
                "model": "tiny-chat",
                "prompts": prompts,
                "scorer": {**scorer, "labels": {"yes": 1.0, "yes!": 0.0}},
            },
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["param"] == "scorer.labels"


def test_a_scorer_installed_as_a_package_appears_in_openapi_and_scores_a_job(
    alignment: Stack,
) -> None:
    with alignment.client() as c:
        schema = c.get("/openapi.json").json()
        mapping = schema["components"]["schemas"]["JobCreate"]["properties"]["scorer"][
            "discriminator"
        ]["mapping"]
        assert PLUGIN_SCORER in mapping and "judge" in mapping
        prompts = [{"id": "raw", "prompt": "<|user|>\nCount from one to five.<|end|>\n"}]
        resp = c.post(
            "/v1/jobs",
            json={
                "model": "tiny-chat",
                "prompts": prompts,
                "sampling": {"n": 16, "max_tokens": 8, "seed": 1},
                "scorer": {"name": PLUGIN_SCORER, "word": "o"},
            },
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        assert alignment.wait_for_job(job_id)["status"] == "succeeded"
        page = all_samples(c, job_id, "raw")
        assert [s["score"] for s in page["samples"]] == [
            float("o" in s["text"]) for s in page["samples"]
        ]

    # A gateway of a process without the package: the name is unknown, a 422 listing the names.
    group = ProcessGroup(alignment.group.log_dir.parent / "logs-plain")
    try:
        env = {k: v for k, v in alignment.env.items() if k != "PYTHONPATH"}
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        import httpx

        with httpx.Client(base_url=base, timeout=30) as plain:
            resp = plain.post(
                "/v1/jobs",
                json={
                    "model": "tiny-chat",
                    "prompts": prompts,
                    "scorer": {"name": PLUGIN_SCORER, "word": "o"},
                },
            )
            assert resp.status_code == 422, resp.text
            err = resp.json()["error"]
            assert err["param"] == "scorer.name"
            assert (
                "judge" in err["message"]
                and PLUGIN_SCORER not in err["message"].split("expected tags")[-1]
            )
            mapping = plain.get("/openapi.json").json()["components"]["schemas"]["JobCreate"][
                "properties"
            ]["scorer"]["discriminator"]["mapping"]
            assert PLUGIN_SCORER not in mapping
    finally:
        group.stop()
