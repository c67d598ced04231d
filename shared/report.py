"""A job's report as one self-contained HTML page: parameters, per-prompt table, and inline SVG
plots (empirical CDF with its DKW band per prompt; greedy score vs bounds across prompts).
No scripts, fonts or images are fetched, so the page renders offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from shared.schemas import JobCreate, JobResults, PromptResult
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


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem} td,th{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f5f5f5} td.l,th.l{text-align:left}
.params td{text-align:left} .grid{display:flex;flex-wrap:wrap;gap:1rem}
svg text.t{font-size:12px;font-weight:600} svg text.a{font-size:10px}
.note{color:#555;font-size:.85rem;max-width:60rem}
"""


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
        "scorer": spec.scorer.name + (f" /{spec.scorer.pattern}/" if spec.scorer.pattern else ""),
        "alpha": f"{spec.alpha:g} (each bound holds with probability ≥ {1 - spec.alpha:g} per prompt)",
        "ed lambda": f"{spec.ed_lambda:g}",
    }
    rows = []
    for p in results.prompts:
        c = _cells(p)
        rows.append(
            "<tr>"
            f'<td class="l">{html.escape(p.id)}</td><td>{p.n}</td>'
            f"<td>{_fmt(p.greedy.score if p.greedy else None)}</td><td>{_fmt(c.mean)}</td>"
            f"<td>{'–' if c.k is None else c.k}</td><td>{_fmt(c.p_lower)}</td><td>{_fmt(c.p_upper)}</td>"
            f"<td>{_fmt(c.mu_upper)}</td><td>{_fmt(c.sd_upper)}</td>"
            f"<td>{_fmt(c.ed_upper)}</td>"
            f'<td class="l">{html.escape(prompt_verdict(p))}</td>'
            "</tr>"
        )
    ecdfs = [
        _ecdf_svg(
            row,
            spec.alpha,
            p.greedy.score if p.greedy else None,
            p.id,
            uniform=spec.stopping is not None,
        )
        for p, row in zip(results.prompts, scores, strict=True)
    ]
    summary = results.summary
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>probeval report {html.escape(job_id)}</title><style>{_CSS}</style></head>
<body>
<h1>probeval report: {html.escape(spec.model)}</h1>
<h2>Parameters</h2>
<table class="params" id="params">{"".join(f"<tr><th class='l'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in params.items())}</table>
<h2>Summary</h2>
<p id="summary">{summary.prompts} prompts; mean of per-prompt means {_fmt(summary.mean_of_means)};
largest M_mu upper bound {_fmt(summary.max_expectation_upper)};
{summary.greedy_zero_but_sampled_positive} prompts score 0 under greedy decoding while some draw scored above 0;
{summary.full_score_proven} prompts where a draw scoring 1 provably has positive probability
(Clopper-Pearson lower bound on P(score = 1) &gt; 0).</p>
<h2>Greedy score vs bounds</h2>
{_overview_svg(results)}
<h2>Per prompt</h2>
<table id="prompts"><thead><tr><th class="l">prompt</th><th>n</th><th>greedy</th><th>mean</th>
<th>draws scoring 1</th><th>P(score=1) lower</th><th>P(score=1) upper</th><th>M_mu upper</th><th>M_sigma upper</th><th>M_ED upper</th><th class="l">verdict</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Empirical CDF of scores with the two-sided DKW band at alpha</h2>
<div class="grid" id="ecdfs">{"".join(ecdfs)}</div>
<p class="note">{html.escape(results.assumptions)} The shaded band is F<sub>n</sub>(x) ± sqrt(ln(2/α)/(2n)):
with probability ≥ 1 − α it contains the true CDF everywhere. The dashed line marks the greedy score.
P(score = 1) bounds are one-sided Clopper-Pearson at 1 − α on the number of draws scoring exactly 1
(M_bin; for ROUGE-L recall: the draw contains every token of the reference, in order).</p>
</body></html>
"""
