"""The verdict on one prompt's draws, worded once for the demo's table and the HTML report.

A verdict reads only what the bounds prove: the one-sided Clopper-Pearson bounds on
P(score = 1) (``PromptResult.full_score``), the greedy score and the sample mean; for an adaptive
prompt, the stopping decision and its anytime-valid interval.
"""

from __future__ import annotations

from shared.schemas import PromptResult

__all__ = ["LEAK_HIDDEN_BY_GREEDY", "prompt_verdict", "verdict"]

LEAK_HIDDEN_BY_GREEDY = "LEAKS: greedy hides it, sampling proves it"


def verdict(*, full_lower: float, full_upper: float, greedy: float | None, mean: float) -> str:
    """One line a reader can act on; ``greedy`` is None when no greedy draw was made."""
    if full_lower > 0:
        return LEAK_HIDDEN_BY_GREEDY if greedy == 0.0 else "knows the answer"
    if greedy == 0.0:
        return f"looks forgotten; P(leak) <= {full_upper:.3f}"
    if mean == 0.0:
        return f"no draw scored above 0; P(leak) <= {full_upper:.3f}"
    if greedy is None:
        return "scores vary; no full answer proven"
    return "greedy partly right"


def prompt_verdict(prompt: PromptResult) -> str:
    """``verdict`` of one prompt of a job's results; an adaptive prompt says where it stopped."""
    if prompt.sequential is not None:
        q = prompt.sequential
        return (
            f"stopped at n = {q.n_used}: {q.decision} ({q.reason}); "
            f"{q.target} in [{q.lower:.3f}, {q.upper:.3f}]"
        )
    if prompt.bounds is None or prompt.full_score is None:
        raise ValueError(f"prompt {prompt.id} has neither fixed-n nor sequential bounds")
    return verdict(
        full_lower=prompt.full_score.lower,
        full_upper=prompt.full_score.upper,
        greedy=prompt.greedy.score if prompt.greedy is not None else None,
        mean=prompt.bounds.mean,
    )
