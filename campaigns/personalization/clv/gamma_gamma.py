"""The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV: using
iso-value curves for customer base analysis", Journal of Marketing Research 42(4), 415-430;
Fader & Hardie, "The Gamma-Gamma model of monetary value", 2013, brucehardie.com note 025).

A customer's purchase values are Gamma(p, nu) with ``nu ~ Gamma(q, gamma)``; it is fitted on
repeat customers' number of repeat purchases ``x`` and their mean value ``zbar``. It assumes that
spend per purchase is independent of how often a customer buys: the report shows the
correlation of ``x`` and ``zbar``, which should be near zero.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from campaigns.personalization.clv._mle import Fit, compress, fit_mle

Floats = npt.NDArray[np.float64]

NAMES = ("p", "q", "gamma")


def log_likelihood(
    params: Floats,
    x: Floats,
    zbar: Floats,
    weights: Floats | None = None,
    distinct: tuple[Floats, npt.NDArray[np.intp]] | None = None,
) -> float:
    """The summed log-likelihood of repeat customers (``x > 0``, ``zbar > 0``; ``distinct``:
    ``np.unique(x, return_inverse=True)``, when the caller has it)."""
    from scipy.special import gammaln

    p, q, g = (float(v) for v in params)
    px = p * x
    # The gamma functions depend on x alone: computed once per distinct x.
    xs, by_x = distinct if distinct is not None else np.unique(x, return_inverse=True)
    gammas = gammaln(p * xs + q) - gammaln(p * xs) - gammaln(q)
    each = (
        gammas[by_x]
        + q * np.log(g)
        + (px - 1) * np.log(zbar)
        + px * np.log(x)
        - (px + q) * np.log(g + x * zbar)
    )
    return float(each.sum() if weights is None else each @ weights)


def gradient(
    params: Floats,
    x: Floats,
    zbar: Floats,
    weights: Floats,
    distinct: tuple[Floats, npt.NDArray[np.intp]],
) -> Floats:
    """The gradient of the negative summed log-likelihood with respect to ``p, q, gamma``."""
    from scipy.special import digamma

    p, q, g = (float(v) for v in params)
    xs, by_x = distinct
    both = digamma(p * xs + q)[by_x]
    log_total = np.log(g + x * zbar)
    d_p = x * (both - digamma(p * xs)[by_x] + np.log(zbar) + np.log(x) - log_total)
    d_q = both - digamma(q) + np.log(g) - log_total
    d_g = q / g - (p * x + q) / (g + x * zbar)
    return -np.array([d @ weights for d in (d_p, d_q, d_g)], dtype=np.float64)


def fit(x: Floats, zbar: Floats) -> Fit:
    """Maximum likelihood estimates of ``p, q, gamma`` from repeat customers."""
    (cx, cz), weights, _ = compress(x, zbar)
    distinct = np.unique(cx, return_inverse=True)
    return fit_mle(
        "gamma_gamma",
        NAMES,
        lambda v: -log_likelihood(v, cx, cz, weights, distinct),
        (1.0, 1.0, float(np.mean(zbar)) or 1.0),
        len(x),
        lambda v: gradient(v, cx, cz, weights, distinct),
    )


def expected_spend(params: Fit, x: Floats, zbar: Floats) -> Floats:
    """E[Z | x, zbar]: a customer's expected spend per purchase, a weighted mean of the
    population mean ``p gamma / (q - 1)`` and their own ``zbar`` (the population mean for
    customers without repeat purchases)."""
    p, q, g = (params[n] for n in NAMES)
    own = np.where(x > 0, np.nan_to_num(zbar), 0.0)
    return np.asarray(p * (g + x * own) / (p * x + q - 1), dtype=np.float64)
