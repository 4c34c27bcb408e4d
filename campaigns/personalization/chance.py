"""Does a model beat chance? Bootstrap intervals for the figures that say so.

A propensity model beats chance when the 95% interval of its cross-validated ROC AUC (the
chosen candidate's out-of-fold scores) lies above 0.5; an uplift model when the 95% interval of
its held-out Qini coefficient (area above random targeting) lies above 0. Both intervals are
percentile bootstraps by :func:`scipy.stats.bootstrap` (rows resampled with their labels), seeded.
A model that does not beat chance is stored as *rejected*: runs do not target with it unless it
was accepted explicitly (``campaign model train ... --accept``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Bootstrap resamples; 1,000 keep the interval ends stable to about 0.005 in AUC.
RESAMPLES = 1000
LEVEL = 0.95


def _auc(y: npt.NDArray[Any], score: npt.NDArray[Any], axis: int = -1) -> npt.NDArray[Any]:
    """ROC AUC along ``axis`` by the rank-sum (Mann-Whitney) identity, ties counted half."""
    from scipy.stats import rankdata

    ranks = rankdata(score, axis=axis)
    positives = y.sum(axis=axis)
    negatives = y.shape[axis] - positives
    rank_sum = (ranks * y).sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def auc_check(
    y: npt.NDArray[np.int64], score: npt.NDArray[np.float64], seed: int
) -> dict[str, Any]:
    """The AUC of ``score`` for labels ``y`` with its bootstrap interval, against 0.5."""
    from scipy.stats import bootstrap

    value = float(_auc(y.astype(np.float64), score))
    result = bootstrap(
        (y.astype(np.float64), score),
        _auc,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        confidence_level=LEVEL,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return {
        "metric": "cross-validated ROC AUC",
        "value": value,
        "ci": [low, high],
        "chance": 0.5,
        "method": f"percentile bootstrap of {RESAMPLES:,} resamples",
        "beats_chance": low > 0.5,
    }


def qini_check(
    score: npt.NDArray[np.float64],
    treated: npt.NDArray[np.int64],
    converted: npt.NDArray[np.int64],
    seed: int,
) -> dict[str, Any]:
    """The held-out Qini coefficient of ``score`` with its bootstrap interval, against 0."""
    from scipy.stats import bootstrap

    from campaigns.personalization.uplift import curve_areas, qini_curve

    def coefficient(s: npt.NDArray[Any], t: npt.NDArray[Any], c: npt.NDArray[Any]) -> float:
        curve = qini_curve(s, t.astype(np.int64), c.astype(np.int64))
        return curve_areas(curve, len(s))["qini_coefficient"]

    value = coefficient(score, treated, converted)
    result = bootstrap(
        (score, treated, converted),
        coefficient,
        paired=True,
        vectorized=False,
        n_resamples=RESAMPLES,
        confidence_level=LEVEL,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return {
        "metric": "held-out Qini coefficient",
        "value": value,
        "ci": [low, high],
        "chance": 0.0,
        "method": f"percentile bootstrap of {RESAMPLES:,} resamples",
        "beats_chance": low > 0.0,
    }


def is_rejected(report: dict[str, Any], settings: dict[str, Any]) -> bool:
    """A stored model that did not beat chance and was not accepted anyway."""
    return bool(report.get("rejected")) and not settings.get("accepted", False)
