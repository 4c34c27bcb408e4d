"""The BG/BB model of discrete-time repeat transactions (Fader, Hardie & Shang 2010,
"Customer-base analysis in a discrete-time noncontractual setting", Marketing Science 29(6),
1086-1108).

Over ``n`` periods after the first, an alive customer transacts in each period with probability
``p ~ Beta(alpha, beta)`` and dies at the start of each with probability ``theta ~
Beta(gamma, delta)``. A history is ``x`` (periods with a transaction), ``t_x`` (the last such
period, 0 when none) and ``n``; the log-likelihood is the paper's equation (5).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from campaigns.personalization.clv._mle import Fit, compress, fit_mle

Floats = npt.NDArray[np.float64]

NAMES = ("alpha", "beta", "gamma", "delta")


def _log_terms(params: Floats, x: Floats, t_x: Floats, n: Floats) -> tuple[Floats, Floats]:
    """log of the 'alive throughout' term and of the likelihood, per history."""
    from scipy.special import betaln, logsumexp

    alpha, beta, gamma, delta = (float(v) for v in params)
    base_ab, base_gd = betaln(alpha, beta), betaln(gamma, delta)
    alive = betaln(alpha + x, beta + n - x) - base_ab + betaln(gamma, delta + n) - base_gd
    # Died after period t_x + i, for i = 0 .. n - t_x - 1.
    width = int(np.max(n - t_x)) if len(n) else 0
    i = np.arange(max(width, 1), dtype=np.float64)[None, :]
    died = (
        betaln(alpha + x[:, None], beta + t_x[:, None] - x[:, None] + i)
        - base_ab
        + betaln(gamma + 1, delta + t_x[:, None] + i)
        - base_gd
    )
    died = np.where(i < (n - t_x)[:, None], died, -np.inf)
    total = logsumexp(np.column_stack([alive, died]), axis=1)
    return alive, np.asarray(total, dtype=np.float64)


def log_likelihood(
    params: Floats, x: Floats, t_x: Floats, n: Floats, weights: Floats | None = None
) -> float:
    """The summed log-likelihood of histories ``(x, t_x, n)`` (``weights``: customers per row)."""
    _, total = _log_terms(params, x, t_x, n)
    return float(total.sum() if weights is None else total @ weights)


def fit(x: Floats, t_x: Floats, n: Floats, weights: Floats | None = None) -> Fit:
    """Maximum likelihood estimates of ``alpha, beta, gamma, delta`` with standard errors."""
    if weights is None:
        (cx, ct, cn), weights, _ = compress(x, t_x, n)
    else:
        cx, ct, cn = x, t_x, n
    return fit_mle(
        "bgbb",
        NAMES,
        lambda v: -log_likelihood(v, cx, ct, cn, weights),
        (1.0, 1.0, 1.0, 1.0),
        int(np.sum(weights)),
    )


def p_alive(params: Fit, x: Floats, t_x: Floats, n: Floats) -> Floats:
    """P(alive in period n + 1 | x, t_x, n), equation (11)."""
    from scipy.special import betaln

    alpha, beta, gamma, delta = (params[k] for k in NAMES)
    values = np.asarray(params.values)
    _, total = _log_terms(values, x, t_x, n)
    alive_next = (
        betaln(alpha + x, beta + n - x)
        - betaln(alpha, beta)
        + betaln(gamma, delta + n + 1)
        - betaln(gamma, delta)
    )
    return np.asarray(np.exp(alive_next - total), dtype=np.float64)


def conditional_expected_transactions(
    params: Fit, periods: float, x: Floats, t_x: Floats, n: Floats
) -> Floats:
    """E[X(n, n + periods) | x, t_x, n]: transactions in the next ``periods``, equation (13)."""
    from scipy.special import betaln, gammaln

    alpha, beta, gamma, delta = (params[k] for k in NAMES)
    _, total = _log_terms(np.asarray(params.values), x, t_x, n)
    log_front = betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta) - total
    ratio = delta / (gamma - 1) * np.exp(gammaln(gamma + delta) - gammaln(1 + delta))
    tail = np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n)) - np.exp(
        gammaln(1 + delta + n + periods) - gammaln(gamma + delta + n + periods)
    )
    return np.asarray(np.exp(log_front) * ratio * tail, dtype=np.float64)


def probability_of_transactions(params: Fit, x: int, n: int) -> float:
    """P(X(n) = x): a new customer transacts in ``x`` of the next ``n`` periods, equation (7)."""
    from scipy.special import betaln, comb

    alpha, beta, gamma, delta = (params[k] for k in NAMES)
    b_ab, b_gd = betaln(alpha, beta), betaln(gamma, delta)
    value = comb(n, x) * np.exp(
        betaln(alpha + x, beta + n - x) - b_ab + betaln(gamma, delta + n) - b_gd
    )
    for i in range(x, n):
        value += comb(i, x) * np.exp(
            betaln(alpha + x, beta + i - x) - b_ab + betaln(gamma + 1, delta + i) - b_gd
        )
    return float(value)
