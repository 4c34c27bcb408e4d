"""Bayesian probability that a variant's rate beats control's (Beta-Binomial, uniform priors).

With independent ``Beta(1 + x, 1 + n - x)`` posteriors, ``P(p_B > p_A)`` has a closed form for
integer parameters (Evan Miller, "Formulas for Bayesian A/B testing"), a sum of ``a_B`` terms::

    sum_{i=0}^{a_B - 1} B(a_A + i, b_A + b_B) / ((b_B + i) B(1 + i, b_B) B(a_A, b_A))

computed in log space. Since ``P(p_B > p_A) = 1 - P(p_A > p_B)``, we sum over the smaller of the
two ``a`` parameters, so a million conversions cost one vector of that length.

Beside it, the expected loss (risk) of each choice, as GrowthBook reports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, logsumexp

from campaigns.experiments.stats import Proportion

#: Prior ``Beta(PRIOR, PRIOR)`` on each rate: uniform.
PRIOR = 1


def _beats(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    i = np.arange(a_b, dtype=np.float64)
    terms = betaln(a_a + i, b_a + b_b) - np.log(b_b + i) - betaln(1 + i, b_b) - betaln(a_a, b_a)
    return float(np.exp(logsumexp(terms)))


def prob_beats(control: Proportion, variant: Proportion) -> float | None:
    """``P(variant rate > control rate | data)``; None when an arm has no units."""
    if control.n == 0 or variant.n == 0:
        return None
    a_a, b_a = PRIOR + control.successes, PRIOR + control.n - control.successes
    a_b, b_b = PRIOR + variant.successes, PRIOR + variant.n - variant.successes
    value = _beats(a_a, b_a, a_b, b_b) if a_b <= a_a else 1.0 - _beats(a_b, b_b, a_a, b_a)
    return min(max(value, 0.0), 1.0)


def _prob_a_beats_b(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """``P(p_A > p_B)`` for ``p_A ~ Beta(a_a, b_a)``, ``p_B ~ Beta(a_b, b_b)``."""
    # _beats(a, b, c, d) is P(second > first), summed over the second's a: keep that short.
    if a_a <= a_b:
        return _beats(a_b, b_b, a_a, b_a)
    return 1.0 - _beats(a_a, b_a, a_b, b_b)


@dataclass(frozen=True)
class ExpectedLoss:
    """The Bayesian risk of each choice, in absolute rate (points as a fraction).

    ``choose_variant`` is ``E[max(p_control - p_variant, 0)]``: how much rate one expects to give
    up by shipping the variant if it is in fact worse; ``choose_control`` the same for keeping
    control. They are GrowthBook's ``risk`` pair (gbstats ``Beta.risk``: ``E[max(A, B)] - E[B]``
    and ``- E[A]``) for the same Beta(1, 1) priors, computed exactly instead of by quadrature.
    """

    choose_control: float
    choose_variant: float


def expected_loss(control: Proportion, variant: Proportion) -> ExpectedLoss | None:
    """The expected loss of shipping ``variant`` and of keeping ``control``; None without units.

    Exact for Beta posteriors: ``E[max(p_A - p_B, 0)] = a_A / (a_A + b_A) P(p'_A > p_B) -
    a_B / (a_B + b_B) P(p_A > p'_B)`` with ``p'`` the posterior with one more success (Chris
    Stucchio, "Bayesian A/B testing at VWO", 2015, appendix).
    """
    if control.n == 0 or variant.n == 0:
        return None
    a_a, b_a = PRIOR + control.successes, PRIOR + control.n - control.successes
    a_b, b_b = PRIOR + variant.successes, PRIOR + variant.n - variant.successes

    def loss(a1: int, b1: int, a2: int, b2: int) -> float:
        # E[max(p1 - p2, 0)]: what choosing arm 2 loses when arm 1 is better.
        value = a1 / (a1 + b1) * _prob_a_beats_b(a1 + 1, b1, a2, b2) - a2 / (
            a2 + b2
        ) * _prob_a_beats_b(a1, b1, a2 + 1, b2)
        return max(value, 0.0)

    return ExpectedLoss(
        choose_control=loss(a_b, b_b, a_a, b_a), choose_variant=loss(a_a, b_a, a_b, b_b)
    )
