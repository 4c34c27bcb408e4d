"""Several variants against one control: adjusted p-values and the interval levels that match.

Two procedures, chosen per experiment (``multiplicity``):

``holm``
    Holm's step-down adjustment controls the family-wise error rate (the chance of any false
    call). The arm ranked ``r``-th smallest p of ``m`` is tested at ``alpha / (m - r + 1)`` while
    every smaller p was rejected; from the first arm not rejected on, at that arm's level.
``benjamini-hochberg``
    Benjamini and Hochberg's step-up adjustment controls the false discovery rate (the expected
    share of false calls among the calls). Intervals at ``alpha R / m`` (``R`` arms rejected,
    at least 1) are Benjamini and Yekutieli's (2005) false-coverage-rate intervals.

:func:`interval_levels` gives each arm the alpha of its interval, so that an interval excludes
"no change" exactly when the adjusted p is below alpha (for intervals that invert their test,
as the score intervals of :mod:`.score` do). Figures match
``statsmodels.stats.multitest.multipletests(method="holm" | "fdr_bh")``.
"""

from __future__ import annotations

from collections.abc import Sequence

from campaigns.experiments.stats import holm

HOLM = "holm"
BENJAMINI_HOCHBERG = "benjamini-hochberg"
METHODS = (HOLM, BENJAMINI_HOCHBERG)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (step-up; false discovery rate), in input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for rank_from_top, index in enumerate(order):
        rank = m - rank_from_top
        running = min(running, m * p_values[index] / rank)
        adjusted[index] = min(running, 1.0)
    return adjusted


def adjust(p_values: Sequence[float], method: str = HOLM) -> list[float]:
    """The adjusted p-values of ``method`` (:data:`HOLM` or :data:`BENJAMINI_HOCHBERG`)."""
    if method == BENJAMINI_HOCHBERG:
        return benjamini_hochberg(p_values)
    return holm(p_values)


def interval_levels(p_values: Sequence[float], alpha: float, method: str = HOLM) -> list[float]:
    """The alpha of each arm's interval, matching the adjusted decision at ``alpha``."""
    m = len(p_values)
    if m == 0:
        return []
    if method == BENJAMINI_HOCHBERG:
        rejected = sum(p < alpha for p in benjamini_hochberg(p_values))
        return [alpha * max(rejected, 1) / m] * m
    order = sorted(range(m), key=lambda i: p_values[i])
    levels = [0.0] * m
    level = alpha / m
    stopped = False
    for rank, index in enumerate(order):
        if not stopped:
            level = alpha / (m - rank)
            stopped = p_values[index] >= level
        levels[index] = level
    return levels
