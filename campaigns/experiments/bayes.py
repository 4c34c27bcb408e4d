"""Bayesian probability that a variant's rate beats control's (Beta-Binomial, uniform priors).

With independent ``Beta(1 + x, 1 + n - x)`` posteriors, ``P(p_B > p_A)`` has a closed form for
integer parameters (Evan Miller, "Formulas for Bayesian A/B testing"), a sum of ``a_B`` terms::

    sum_{i=0}^{a_B - 1} B(a_A + i, b_A + b_B) / ((b_B + i) B(1 + i, b_B) B(a_A, b_A))

computed in log space. Since ``P(p_B > p_A) = 1 - P(p_A > p_B)``, we sum over the smaller of the
two ``a`` parameters, so a million conversions cost one vector of that length.
"""

from __future__ import annotations

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
