"""An independent reference for the score interval of a difference of two proportions.

The restricted maximum-likelihood rates come from ``scipy.optimize.minimize_scalar`` on the
binomial log-likelihood (not from a closed form), the statistic is Miettinen and Nurminen's
without their n / (n - 1) factor, and the interval ends from ``scipy.optimize.brentq``.
statsmodels 0.15's ``confint_proportions_2indep(method="score", compare="diff",
correction=False)`` uses a closed form whose restricted rate is off by about 1e-6 (a lower
likelihood than this maximum), which moves its interval ends by up to 1e-3 relative.
"""

from __future__ import annotations

import math

from scipy import optimize


def _statistic(x1: int, n1: int, x2: int, n2: int, d: float) -> float:
    def negative_log_likelihood(q2: float) -> float:
        q1 = q2 + d
        total = 0.0
        for hits, n, q in ((x1, n1, q1), (x2, n2, q2)):
            total += hits * math.log(q) if hits else 0.0
            total += (n - hits) * math.log(1 - q) if n - hits else 0.0
        return -total

    low, high = max(0.0, -d) + 1e-12, min(1.0, 1.0 - d) - 1e-12
    q2 = optimize.minimize_scalar(
        negative_log_likelihood, bounds=(low, high), method="bounded", options={"xatol": 1e-13}
    ).x
    q1 = q2 + d
    variance = q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2
    return (x1 / n1 - x2 / n2 - d) / math.sqrt(variance)


def score_diff_interval(x1: int, n1: int, x2: int, n2: int, z: float) -> tuple[float, float]:
    """The two-sided score interval of ``x1/n1 - x2/n2`` at normal quantile ``z``."""
    estimate = x1 / n1 - x2 / n2
    low = optimize.brentq(lambda d: _statistic(x1, n1, x2, n2, d) - z, -0.999, estimate)
    high = optimize.brentq(lambda d: _statistic(x1, n1, x2, n2, d) + z, estimate, 0.999)
    return float(low), float(high)
