"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005, "'Counting your customers'
the easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2), 275-284).

While alive, a customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)``; after each purchase
they drop out with probability ``p ~ Beta(a, b)``. A customer's history is summarised by ``x``
(repeat purchases), ``t_x`` (time of the last purchase since the first) and ``T`` (time since the
first purchase), all in one time unit. The log-likelihood is the paper's equation (6).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from campaigns.personalization.clv._mle import Fit, compress, fit_mle

Floats = npt.NDArray[np.float64]

NAMES = ("r", "alpha", "a", "b")


def log_likelihood(
    params: Floats,
    x: Floats,
    t_x: Floats,
    T: Floats,
    weights: Floats | None = None,
    distinct: tuple[Floats, npt.NDArray[np.intp]] | None = None,
) -> float:
    """The summed log-likelihood of customers ``(x, t_x, T)`` (``weights``: customers per row;
    ``distinct``: ``np.unique(x, return_inverse=True)``, when the caller has it)."""
    from scipy.special import gammaln

    r, alpha, a, b = (float(p) for p in params)
    # The terms depending on x alone: computed once per distinct x.
    xs, by_x = distinct if distinct is not None else np.unique(x, return_inverse=True)
    a1 = gammaln(r + xs) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    each = (a1 + a2)[by_x] + np.where(repeat, np.logaddexp(a3, a4), a3)
    if weights is None:
        return float(each.sum())
    return float(each @ weights)


def gradient(
    params: Floats,
    x: Floats,
    t_x: Floats,
    T: Floats,
    weights: Floats,
    distinct: tuple[Floats, npt.NDArray[np.intp]],
) -> Floats:
    """The gradient of the negative summed log-likelihood with respect to ``r, alpha, a, b``."""
    from scipy.special import digamma

    r, alpha, a, b = (float(p) for p in params)
    xs, by_x = distinct
    repeat = x > 0
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    # Weight of the "still alive" and the "dropped out after t_x" terms in each likelihood.
    w4 = np.where(repeat, 1.0 / (1.0 + np.exp(np.clip(a3 - a4, -700, 700))), 0.0)
    w3 = 1.0 - w4
    d_r = (digamma(r + xs) - digamma(r))[by_x] + np.log(alpha)
    d_r += -w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = (digamma(a + b) - digamma(a + b + xs))[by_x] + w4 / a
    d_b = (digamma(a + b) + digamma(b + xs) - digamma(b) - digamma(a + b + xs))[by_x]
    d_b = d_b - w4 / (b + np.maximum(x, 1.0) - 1.0)
    return -np.array([d @ weights for d in (d_r, d_alpha, d_a, d_b)], dtype=np.float64)


def fit(x: Floats, t_x: Floats, T: Floats) -> Fit:
    """Maximum likelihood estimates of ``r, alpha, a, b`` with standard errors."""
    (cx, ct, cT), weights, _ = compress(x, t_x, T)
    scale = float(np.mean(T)) or 1.0
    distinct = np.unique(cx, return_inverse=True)
    return fit_mle(
        "bgnbd",
        NAMES,
        lambda p: -log_likelihood(p, cx, ct, cT, weights, distinct),
        (1.0, scale, 1.0, 1.0),
        len(x),
        lambda p: gradient(p, cx, ct, cT, weights, distinct),
    )


def expected_purchases(params: Fit, t: Floats | float) -> Floats:
    """E[X(t)]: repeat purchases of a new customer in the ``t`` time units after the first."""
    from scipy.special import hyp2f1

    r, alpha, a, b = (params[n] for n in NAMES)
    t = np.asarray(t, dtype=np.float64)
    z = t / (alpha + t)
    return np.asarray(
        (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z)),
        dtype=np.float64,
    )


def p_alive(params: Fit, x: Floats, t_x: Floats, T: Floats) -> Floats:
    """P(alive at T | x, t_x, T), equation (A4) of the paper's appendix; 1 when ``x = 0`` (the
    model lets customers drop out only right after a purchase)."""
    r, alpha, a, b = (params[n] for n in NAMES)
    repeat = x > 0
    log_ratio = (
        np.log(a)
        - np.log(b + np.maximum(x, 1.0) - 1.0)
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(repeat, 1.0 / (1.0 + np.exp(np.minimum(log_ratio, 700.0))), 1.0)


def conditional_expected_purchases(
    params: Fit, t: float, x: Floats, t_x: Floats, T: Floats
) -> Floats:
    """E[Y(t) | x, t_x, T]: purchases in the next ``t`` time units, equation (10)."""
    from scipy.special import hyp2f1

    r, alpha, a, b = (params[n] for n in NAMES)
    z = t / (alpha + T + t)
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    first = (a + b + x - 1) / (a - 1) * bracket
    return np.asarray(first * p_alive(params, x, t_x, T), dtype=np.float64)
