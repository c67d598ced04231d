"""Turning a job's stored scores into its results: per-prompt bounds and a summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.adaptive import stream_states
from shared.bounds import ASSUMPTIONS, compute_bounds
from shared.draws import JobDraws
from shared.errors import Conflict
from shared.schemas import (
    FullScoreBounds,
    JobCreate,
    JobResults,
    JobStatus,
    JudgeInfo,
    LeakFamily,
    MeanLeakAtK,
    PromptResult,
    ResultsSummary,
)
from shared.scorers.judge import JudgeOptions, template_sha256
from shared.sequential import SEQUENTIAL_ASSUMPTIONS, sequential_row
from shared.stats import clopper_pearson
from shared.stats.family import binomial_pvalues_above, decide
from shared.stats.leak import mean_leak_at_k
from shared.store import JobRecord, Store


def full_score_bounds(rows: Sequence[Sequence[float]], alpha: float) -> list[FullScoreBounds]:
    """Clopper-Pearson bounds on P(score = 1) per row (see ``FullScoreBounds``)."""
    if not rows:
        return []
    k = np.array([np.count_nonzero(np.asarray(row) >= 1.0) for row in rows], dtype=np.int64)
    n = np.array([len(row) for row in rows], dtype=np.int64)
    cp = clopper_pearson(k, n, alpha=alpha)
    return [
        FullScoreBounds(k=int(a), lower=float(lo), upper=float(up))
        for a, lo, up in zip(cp.k, cp.lower, cp.upper, strict=True)
    ]


def build_results(store: Store, job: JobRecord, *, status: JobStatus) -> JobResults:
    """Bounds per prompt from every stored score, in sample-index order.

    A finished job has exactly n scores per prompt. A cancelled one may have fewer
    (``partial``); prompts without any scored draw are then left out, since no bound exists
    for an empty row.
    """
    spec = job.spec
    if spec.stopping is not None:
        return build_adaptive_results(store, job, status=status)
    greedy = store.greedy(job.id)
    rendered = store.rendered_prompts(job.id)
    rows: list[list[float]] = []
    prompt_indices: list[int] = []
    partial = False
    for index in range(len(spec.prompts)):
        scores = store.all_scores(job.id, index)
        if len(scores) != spec.sampling.n:
            partial = True
        if scores:
            rows.append([scores[i] for i in sorted(scores)])
            prompt_indices.append(index)
    response = compute_bounds(rows, spec.options()) if rows else None
    full = full_score_bounds(rows, spec.alpha)
    prompts: list[PromptResult] = []
    for position, index in enumerate(prompt_indices):
        assert response is not None
        prompts.append(
            PromptResult(
                id=spec.prompts[index].id,
                n=len(rows[position]),
                rendered_prompt=spec.prompts[index].prompt or rendered.get(index),
                greedy=greedy.get(index),
                bounds=response.rows[position],
                full_score=full[position],
            )
        )
    return JobResults(
        id=job.id,
        status=status,
        alpha=spec.alpha,
        judge=judge_info(spec),
        partial=partial,
        prompts=prompts,
        source_job=job.source_job,
        summary=summarize(prompts).model_copy(update=leak_summary(prompts, spec)),
        assumptions=ASSUMPTIONS,
    )


def build_adaptive_results(store: Store, job: JobRecord, *, status: JobStatus) -> JobResults:
    """Per prompt: its stream's stop and the bounds valid under optional stopping, computed from
    exactly the n_used draws its stream folded in (in sample-index order). A cancelled job's
    open prompts report what they had (reason ``cancelled``); prompts with no round folded in
    are left out."""
    spec = job.spec
    if spec.stopping is None:
        raise ValueError("not an adaptive job")
    greedy = store.greedy(job.id)
    states = stream_states(store, job)
    options = spec.options()
    prompts: list[PromptResult] = []
    partial = False
    for index in range(len(spec.prompts)):
        state = states.get(index)
        if state is None or not state.stopped:
            partial = True
        if state is None or state.n == 0:
            continue
        values = store.scores(job.id, index, list(range(state.n)))
        row = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if np.isnan(row).any():
            raise RuntimeError(f"prompt {index} folded in {state.n} draws that are not all stored")
        prompts.append(
            PromptResult(
                id=spec.prompts[index].id,
                n=state.n,
                greedy=greedy.get(index),
                bounds=None,
                full_score=None,
                sequential=sequential_row(row, state, spec.stopping, options),
            )
        )
    return JobResults(
        id=job.id,
        status=status,
        alpha=spec.alpha,
        partial=partial,
        prompts=prompts,
        source_job=job.source_job,
        summary=summarize(prompts),
        assumptions=SEQUENTIAL_ASSUMPTIONS,
    )


def _mean_and_upper(p: PromptResult) -> tuple[float, float]:
    """Sample mean and the reported upper bound on E[X] (fixed-n, or anytime-valid)."""
    if p.bounds is not None:
        return p.bounds.mean, p.bounds.expectation.upper
    if p.sequential is None:
        raise ValueError(f"prompt {p.id} has no bounds")
    return p.sequential.mean, p.sequential.anytime.expectation.upper


def judge_info(spec: JobCreate) -> JudgeInfo | None:
    """What a judged job's results record about its judge; None for other scorers."""
    scorer = spec.scorer
    if not isinstance(scorer, JudgeOptions):
        return None
    return JudgeInfo(
        judge_model=scorer.judge_model,
        template_sha256=template_sha256(scorer.template),
        labels=dict(scorer.labels),
    )


def summarize(prompts: list[PromptResult]) -> ResultsSummary:
    """The job-level summary over its prompts' results (means, upper bounds, proven counts)."""
    cells = [_mean_and_upper(p) for p in prompts]
    means = [m for m, _ in cells]
    uppers = [u for _, u in cells]
    return ResultsSummary(
        prompts=len(prompts),
        mean_of_means=sum(means) / len(means) if means else None,
        max_expectation_upper=max(uppers, default=None),
        # Scores are in [0, 1], so a positive mean is exactly "some draw scored above 0".
        greedy_zero_but_sampled_positive=sum(
            1
            for p, mean in zip(prompts, means, strict=True)
            if p.greedy is not None and p.greedy.score == 0.0 and mean > 0.0
        ),
        full_score_proven=sum(1 for p in prompts if p.full_score and p.full_score.lower > 0.0),
        decisions=_decisions(prompts),
    )


def _decisions(prompts: list[PromptResult]) -> dict[str, int] | None:
    """Adaptive jobs: prompts per decision; None for fixed-n jobs."""
    rows = [p.sequential for p in prompts if p.sequential is not None]
    if not rows:
        return None
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.decision] = counts.get(r.decision, 0) + 1
    return counts


def readable_results(store: Store, job: JobRecord) -> JobResults:
    """The results a caller may read: the stored ones once the job has succeeded, partial ones
    computed from what was scored once it is cancelled; otherwise a Conflict."""
    if job.status in (JobStatus.succeeded, JobStatus.cancelled):
        # Redis holds a succeeded job's results; the archive, a succeeded or cancelled one's.
        results = JobDraws(store, job).results()
        if results is not None:
            return results
    if job.status == JobStatus.cancelled:
        built = build_results(store, job, status=JobStatus.cancelled)
        # Archived while it was computed (its Redis copy may be half deleted): the archive
        # holds what the job's complete scores gave.
        archived = store.get_job(job.id)
        if archived.archive is not None:
            return JobDraws(store, archived).results() or built
        return built
    raise Conflict(
        f"job {job.id} is {job.status.value}; results exist once it has succeeded "
        "(or partial ones once it is cancelled)",
        param="id",
    )


def leak_summary(prompts: list[PromptResult], spec: JobCreate) -> dict[str, object]:
    """Mean leak@k over the prompts and the family-wise 'leaks' statement (summary fields)."""
    # Fixed-n bounds only: adaptive jobs (bounds null) have no valid fixed-n leak statement.
    leaks = [(p, p.bounds.leak) for p in prompts if p.bounds is not None and p.bounds.leak]
    if not leaks:
        return {"leak_at_k": [], "leaks": None}
    rows = [p for p, _ in leaks]
    c = np.array([leak.c for _, leak in leaks], dtype=np.int64)
    n = np.array([p.n for p in rows], dtype=np.int64)
    means = mean_leak_at_k(c, n, spec.k, alpha=spec.alpha) if spec.k else None
    leak_at_k = (
        [
            MeanLeakAtK(
                k=int(k),
                estimate=None if np.isnan(e) else float(e),
                lower=float(lo),
                upper=float(up),
            )
            for k, e, lo, up in zip(means.ks, means.estimate, means.lower, means.upper, strict=True)
        ]
        if means is not None
        else []
    )
    decisions = decide(
        binomial_pvalues_above(c, n, tau=spec.leak_tau), alpha=spec.alpha, method=spec.family
    )
    leaking = [p.id for p, r in zip(rows, decisions.reject, strict=True) if r]
    event = f"P(score >= {spec.leak_at:g}) > {spec.leak_tau:g}"
    if spec.family == "none":
        statement = (
            f"{len(leaking)} of {len(rows)} prompts show {event}, each at alpha = {spec.alpha:g} "
            "on its own; this is not a statement about the set (use family bonferroni or holm)."
        )
    else:
        statement = (
            f"With probability >= {1 - spec.alpha:g} ({spec.family} over {len(rows)} prompts), "
            f"every listed prompt has {event}: at least {len(leaking)} of {len(rows)} leak."
        )
    family = LeakFamily(
        method=spec.family,
        alpha=spec.alpha,
        leak_tau=spec.leak_tau,
        leaking=leaking,
        at_least=len(leaking),
        statement=statement,
    )
    return {"leak_at_k": leak_at_k, "leaks": family}
