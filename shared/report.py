"""A job's report as one self-contained HTML page: parameters, per-prompt table, and inline SVG
plots (empirical CDF with its DKW band per prompt; greedy score vs bounds across prompts).
No scripts, fonts or images are fetched, so the page renders offline.

The page is the jinja2 template ``shared/templates/report.html.j2`` (package data), autoescaped;
the two plots are SVG built here from the numbers and passed in as markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel

from shared.schemas import JobCreate, JobResults, PromptResult
from shared.scorers.judge import JudgeOptions, template_sha256
from shared.stats import dkw_epsilon
from shared.stats.sequential import uniform_dkw_epsilon
from shared.verdicts import prompt_verdict

# Colours chosen to stay distinguishable for the common forms of colour blindness.
_BLUE, _ORANGE, _GREY, _RED = "#1f77b4", "#e66100", "#888888", "#b2182b"


@dataclass(frozen=True)
class _Cells:
    """What the table and the overview show for one prompt, fixed-n or adaptive."""

    mean: float
    k: int | None
    p_lower: float | None  # bounds on P(score = 1)
    p_upper: float | None
    mu_lower: float
    mu_upper: float
    sd_upper: float
    ed_upper: float


def _cells(p: PromptResult) -> _Cells:
    if p.sequential is not None:
        q = p.sequential
        full = q.target == "p_full"
        return _Cells(
            mean=q.mean,
            k=None,
            p_lower=q.lower if full else None,
            p_upper=q.upper if full else None,
            mu_lower=q.anytime.expectation.lower,
            mu_upper=q.anytime.expectation.upper,
            sd_upper=q.anytime.std.upper,
            ed_upper=q.anytime.ed.upper,
        )
    if p.bounds is None or p.full_score is None:
        raise ValueError(f"prompt {p.id} has neither fixed-n nor sequential bounds")
    b, f = p.bounds, p.full_score
    return _Cells(
        mean=b.mean,
        k=f.k,
        p_lower=f.lower,
        p_upper=f.upper,
        mu_lower=b.expectation.lower,
        mu_upper=b.expectation.upper,
        sd_upper=b.std.upper,
        ed_upper=b.ed.upper,
    )


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _ecdf_svg(
    scores: Sequence[float], alpha: float, greedy: float | None, title: str, *, uniform: bool
) -> str:
    """Step plot of the empirical CDF with the two-sided DKW band at alpha (the time-uniform
    band of Howard & Ramdas for an adaptive job, whose n was chosen by looking at the data)."""
    w, h, pad = 300, 190, 34
    n = len(scores)
    xs = sorted(scores)

    def px(x: float) -> float:
        return pad + x * (w - 2 * pad)

    def py(y: float) -> float:
        return h - pad + 6 - y * (h - 2 * pad)

    width = uniform_dkw_epsilon if uniform else partial(dkw_epsilon, two_sided=True)
    eps = width(n, alpha) if n else 0.0
    # Step points of F_n: (x, F(x)) at each distinct value, from x = 0 to x = 1.
    points: list[tuple[float, float]] = [(0.0, 0.0)]
    i = 0
    while i < n:
        x = xs[i]
        while i < n and xs[i] == x:
            i += 1
        points.append((x, points[-1][1]))
        points.append((x, i / n))
    points.append((1.0, 1.0))
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    upper = [(x, min(1.0, y + eps)) for x, y in points]
    lower = [(x, max(0.0, y - eps)) for x, y in points]
    band = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in upper + lower[::-1])
    parts = [
        f'<svg class="ecdf" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>',
        f'<text x="{w / 2}" y="14" text-anchor="middle" class="t">{html.escape(title)}</text>',
        f'<polygon points="{band}" fill="{_BLUE}" fill-opacity="0.18" stroke="none"/>',
        f'<polyline points="{line}" fill="none" stroke="{_BLUE}" stroke-width="1.6"/>',
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(0)}" stroke="#333"/>',
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(1)}" stroke="#333"/>',
    ]
    for t in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{px(t)}" y="{py(0) + 14}" text-anchor="middle" class="a">{t:g}</text>'
        )
        parts.append(
            f'<text x="{px(0) - 4}" y="{py(t) + 4}" text-anchor="end" class="a">{t:g}</text>'
        )
    parts.append(f'<text x="{px(0.5)}" y="{h - 2}" text-anchor="middle" class="a">score</text>')
    if greedy is not None:
        parts.append(
            f'<line x1="{px(greedy):.1f}" y1="{py(0)}" x2="{px(greedy):.1f}" y2="{py(1)}" '
            f'stroke="{_ORANGE}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{min(px(greedy) + 3, w - 60):.1f}" y="{py(1) + 10}" class="a" fill="{_ORANGE}">greedy</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _overview_svg(results: JobResults) -> str:
    """Per prompt: greedy score (orange diamond), mean (blue dot) and the bounds above it."""
    prompts = results.prompts
    w = max(360, 40 + 26 * len(prompts))
    h, pad = 240, 40

    def px(i: int) -> float:
        return pad + (i + 0.5) * (w - 2 * pad) / max(1, len(prompts))

    def py(y: float) -> float:
        return h - pad - max(0.0, min(1.0, y)) * (h - 2 * pad)

    parts = [
        f'<svg id="overview" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'xmlns="http://www.w3.org/2000/svg"><title>Greedy score vs bounds per prompt</title>',
        f'<line x1="{pad}" y1="{py(0)}" x2="{w - pad}" y2="{py(0)}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{py(0)}" x2="{pad}" y2="{py(1)}" stroke="#333"/>',
    ]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<text x="{pad - 4}" y="{py(t) + 4}" text-anchor="end" class="a">{t:g}</text>'
        )
        parts.append(f'<line x1="{pad}" y1="{py(t)}" x2="{w - pad}" y2="{py(t)}" stroke="#eee"/>')
    for i, p in enumerate(prompts):
        c = _cells(p)
        x = px(i)
        parts.append(
            f'<line x1="{x:.1f}" y1="{py(c.mu_lower):.1f}" x2="{x:.1f}" '
            f'y2="{py(c.mu_upper):.1f}" stroke="{_BLUE}" stroke-width="3" stroke-opacity="0.5">'
            f"<title>{html.escape(p.id)}: E[X] in [{_fmt(c.mu_lower)}, {_fmt(c.mu_upper)}]</title></line>"
        )
        parts.append(f'<circle cx="{x:.1f}" cy="{py(c.mean):.1f}" r="3.5" fill="{_BLUE}"/>')
        if c.p_upper is not None:
            parts.append(
                f'<line x1="{x - 6:.1f}" y1="{py(c.p_upper):.1f}" x2="{x + 6:.1f}" '
                f'y2="{py(c.p_upper):.1f}" stroke="{_RED}" stroke-width="2">'
                f"<title>{html.escape(p.id)}: P(score = 1) in [{_fmt(c.p_lower)}, {_fmt(c.p_upper)}]"
                "</title></line>"
            )
        if p.greedy is not None:
            g = py(p.greedy.score)
            parts.append(
                f'<polygon points="{x:.1f},{g - 5:.1f} {x + 5:.1f},{g:.1f} {x:.1f},{g + 5:.1f} {x - 5:.1f},{g:.1f}" '
                f'fill="{_ORANGE}"><title>{html.escape(p.id)}: greedy {_fmt(p.greedy.score)}</title></polygon>'
            )
    legend_y = 16
    parts.append(
        f'<text x="{pad}" y="{legend_y}" class="a"><tspan fill="{_ORANGE}">◆ greedy score</tspan>'
        f'  <tspan fill="{_BLUE}">● sampled mean, bar: M_mu interval</tspan>'
        f'  <tspan fill="{_RED}">— upper bound on P(score = 1)</tspan></text>'
    )
    parts.append(
        f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle" class="a">prompts (in job order)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Autoescaping: every value from a job (ids, model names, verdicts) is escaped by the
    # template; only the SVG plots built above are marked safe.
    env = Environment(
        loader=PackageLoader("shared", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    return env


def scorer_label(scorer: BaseModel) -> str:
    """The scorer as the report names it: its name and its main option."""
    name = str(getattr(scorer, "name", ""))
    if isinstance(scorer, JudgeOptions):
        return (
            f"{name} (judge {scorer.judge_model}, template {template_sha256(scorer.template)[:12]})"
        )
    pattern = getattr(scorer, "pattern", None)
    return name + (f" /{pattern}/" if pattern else "")


def render_report(
    job_id: str, spec: JobCreate, results: JobResults, scores: Sequence[Sequence[float]]
) -> str:
    """The report page. ``scores`` holds each reported prompt's draws, in results order."""
    s = spec.sampling
    params = {
        "job": job_id,
        "model": spec.model,
        "status": results.status.value + (" (partial)" if results.partial else ""),
        "prompts": str(len(spec.prompts)),
        "draws per prompt (n)": str(s.n),
        "temperature / top_p / top_k": f"{s.temperature:g} / {s.top_p:g} / {s.top_k}",
        "max_tokens": str(s.max_tokens),
        "seed": "none" if s.seed is None else str(s.seed),
        "scorer": scorer_label(spec.scorer),
        "alpha": f"{spec.alpha:g} (each bound holds with probability ≥ {1 - spec.alpha:g} per prompt)",
        "ed lambda": f"{spec.ed_lambda:g}",
    }
    rows = [
        {
            "id": p.id,
            "n": p.n,
            "greedy": p.greedy.score if p.greedy else None,
            "cells": _cells(p),
            "verdict": prompt_verdict(p),
        }
        for p in results.prompts
    ]
    ecdfs = [
        Markup(
            _ecdf_svg(
                row,
                spec.alpha,
                p.greedy.score if p.greedy else None,
                p.id,
                uniform=spec.stopping is not None,
            )
        )
        for p, row in zip(results.prompts, scores, strict=True)
    ]
    env = _environment()
    css = Markup(env.loader.get_source(env, "report.css")[0])  # type: ignore[union-attr]
    return env.get_template("report.html.j2").render(
        job_id=job_id,
        spec=spec,
        css=css,
        params=params,
        summary=results.summary,
        overview=Markup(_overview_svg(results)),
        rows=rows,
        ecdfs=ecdfs,
        assumptions=results.assumptions,
    )
