"""Comparing two jobs (or two score files) prompt by prompt: POST /v1/compare and
``probeval compare``. The statistics are in ``shared.stats.difference``; this module checks that
the two sides are comparable and builds the ``CompareResponse`` contract."""

from __future__ import annotations

from collections.abc import Sequence

from shared.draws import JobDraws
from shared.errors import Conflict, InvalidInput
from shared.schemas import (
    CompareOptions,
    CompareResponse,
    CompareSummary,
    JobStatus,
    PromptDifference,
)
from shared.stats.difference import compare_rows
from shared.store import JobRecord, Store

ASSUMPTIONS = (
    "Per prompt, each side's draws are i.i.d. scores in [0, 1] with n fixed before sampling, and "
    "the two sides are independent samples. The interval on b - a is [L_b - U_a, U_b - L_a] with "
    "each of the four one-sided bounds at interval_alpha / 4 (Clopper-Pearson for p_full, mapped "
    "through 1 - (1 - p)^k for leak@k; Anderson/DKW for the mean), so it holds with probability "
    ">= 1 - interval_alpha by a union bound. Decisions: 'b lower' / 'b higher' when the interval "
    "excludes 0; with family none each is wrong with probability <= alpha; with bonferroni or holm "
    "(over the 2m one-sided claims) all of them are right at once with probability >= 1 - alpha. "
    "Fixed-n bounds: not valid under optional stopping."
)


def check_comparable(a: JobRecord, b: JobRecord) -> None:
    """Both succeeded, same prompt ids in the same order, same scorer; else 409 / 422."""
    for side, job in (("a", a), ("b", b)):
        if job.status != JobStatus.succeeded:
            raise Conflict(
                f"{side}: job {job.id} is {job.status.value}; allowed: succeeded jobs",
                param=side,
            )
    ids_a = [p.id for p in a.spec.prompts]
    ids_b = [p.id for p in b.spec.prompts]
    if ids_a != ids_b:
        only_a = sorted(set(ids_a) - set(ids_b))[:3]
        only_b = sorted(set(ids_b) - set(ids_a))[:3]
        detail = (
            f"only in a: {only_a}, only in b: {only_b}"
            if only_a or only_b
            else "same ids in a different order"
        )
        raise InvalidInput(
            f"b: jobs {a.id} and {b.id} have different prompts ({len(ids_a)} vs {len(ids_b)}; "
            f"{detail}); allowed: the same prompt ids in the same order",
            param="b",
        )
    if a.spec.scorer != b.spec.scorer:
        raise InvalidInput(
            f"b: job {b.id} is scored by {b.spec.scorer.model_dump(exclude_none=True)}, job {a.id} "
            f"by {a.spec.scorer.model_dump(exclude_none=True)}; allowed: the same scorer",
            param="b",
        )


def job_rows(store: Store, job: JobRecord) -> list[list[float]]:
    """Every stored score of each prompt, in sample-index order."""
    rows = []
    draws = JobDraws(store, job)
    for index in range(len(job.spec.prompts)):
        scores = draws.all_scores(index)
        rows.append([scores[i] for i in sorted(scores)])
    return rows


def compare_scores(
    ids: Sequence[str],
    rows_a: Sequence[Sequence[float]],
    rows_b: Sequence[Sequence[float]],
    options: CompareOptions,
    *,
    a: str,
    b: str,
) -> CompareResponse:
    """The comparison of two aligned lists of score rows (row i is prompt ``ids[i]``)."""
    table = compare_rows(
        rows_a,
        rows_b,
        target=options.target,
        alpha=options.alpha,
        family=options.family,
        leak_at=options.leak_at,
        k=options.k,
    )
    prompts = [
        PromptDifference(
            id=pid,
            n_a=len(ra),
            n_b=len(rb),
            a=float(table.estimate_a[i]),
            b=float(table.estimate_b[i]),
            difference=float(table.estimate[i]),
            lower=float(table.lower[i]),
            upper=float(table.upper[i]),
            p_value=float(table.adjusted[i]),
            decision=table.decisions[i],
        )
        for i, (pid, ra, rb) in enumerate(zip(ids, rows_a, rows_b, strict=True))
    ]
    m = len(prompts)
    if options.family == "none":
        statement = (
            f"b is shown lower than a on {table.b_lower} and higher on {table.b_higher} of {m} "
            f"prompts, each decision at alpha = {options.alpha:g} on its own (no statement about "
            "the set: use family bonferroni or holm)."
        )
    else:
        statement = (
            f"With probability >= {1 - options.alpha:g} ({options.family} over {m} prompts), "
            f"every decision is right: b is lower than a on at least {table.b_lower} prompts and "
            f"higher on at least {table.b_higher}."
        )
    return CompareResponse(
        a=a,
        b=b,
        target=options.target,
        alpha=options.alpha,
        family=options.family,
        k=options.k if options.target == "leak@k" else None,
        leak_at=options.leak_at if options.target != "mean" else None,
        interval_alpha=table.interval_alpha,
        prompts=prompts,
        summary=CompareSummary(
            prompts=m,
            b_lower=table.b_lower,
            b_higher=table.b_higher,
            no_difference_shown=m - table.b_lower - table.b_higher,
            statement=statement,
        ),
        assumptions=ASSUMPTIONS,
    )


def compare_jobs(
    store: Store, a: JobRecord, b: JobRecord, options: CompareOptions
) -> CompareResponse:
    """Check, load and compare two jobs."""
    check_comparable(a, b)
    ids = [p.id for p in a.spec.prompts]
    return compare_scores(ids, job_rows(store, a), job_rows(store, b), options, a=a.id, b=b.id)
