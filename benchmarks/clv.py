"""Time the lifetime-value models at scale: BG/NBD and Gamma-Gamma fitted on a million customers.

    python -m benchmarks.clv                    # 1,000,000 customers
    python -m benchmarks.clv --customers 100000

The customers are drawn from the models themselves, with Fader, Hardie & Lee's CDNOW estimates
(r = 0.243, alpha = 4.414 per week, a = 0.793, b = 2.426; spend p = 6.25, q = 3.74,
gamma = 15.44), on a grid of whole days over two years: a purchase rate from Gamma(r, alpha),
a drop-out chance after each purchase from Beta(a, b), exponential gaps between purchases. Timed
on their own: the BG/NBD fit (with standard errors from the Hessian), the Gamma-Gamma fit, and
the scoring of everyone (P(alive) and expected purchases). The baseline is the same BG/NBD
maximum likelihood with the textbook per-customer log-likelihood (no grouping of customers who
share a history or of the terms that depend on x alone), measured in the same process on a tenth
of the customers and scaled up; the recovered parameters are printed beside the true ones.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

from campaigns.personalization.clv import bgnbd, gamma_gamma

TRUE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
TARGET_SECONDS = 30.0


def simulate(customers: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``x``, ``t_x``, ``T`` (weeks, whole days) and ``zbar`` of ``customers`` customers."""
    rng = np.random.default_rng(seed)
    T_days = rng.integers(1, 730, customers).astype(np.float64)
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], customers) / 7  # per day
    drop = rng.beta(TRUE["a"], TRUE["b"], customers)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    now = np.zeros(customers)
    active = np.ones(customers, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        gap = rng.exponential(1 / np.maximum(rate[idx], 1e-12))
        now[idx] += gap
        inside = now[idx] <= T_days[idx]
        bought = idx[inside]
        x[bought] += 1
        t_x[bought] = np.floor(now[bought])
        active[idx[~inside]] = False
        active[bought[rng.random(len(bought)) < drop[bought]]] = False
    nu = rng.gamma(SPEND["q"], 1 / SPEND["gamma"], customers)
    zbar = np.where(x > 0, rng.gamma(SPEND["p"] * np.maximum(x, 1), 1 / nu) / np.maximum(x, 1), 0)
    return x, t_x / 7, T_days / 7, zbar


def plain_fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The textbook per-customer BG/NBD log-likelihood, minimised the same way."""

    def negative(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
        return float(-(a1 + a2 + np.where(x > 0, np.logaddexp(a3, a4), a3)).sum())

    first = minimize(negative, np.zeros(4), method="Nelder-Mead", options={"maxiter": 20_000})
    return np.exp(minimize(negative, first.x, method="BFGS").x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    load_before = os.getloadavg()
    x, t_x, T, zbar = simulate(args.customers)

    start, cpu = time.perf_counter(), time.process_time()
    purchases = bgnbd.fit(x, t_x, T)
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    repeat = x > 0
    start, cpu = time.perf_counter(), time.process_time()
    spend = gamma_gamma.fit(x[repeat], zbar[repeat])
    spend_seconds, spend_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    bgnbd.p_alive(purchases, x, t_x, T)
    bgnbd.conditional_expected_purchases(purchases, 90 / 7, x, t_x, T)
    gamma_gamma.expected_spend(spend, x, zbar)
    score_seconds = time.perf_counter() - start

    tenth = max(args.customers // 10, 1)
    start, cpu = time.perf_counter(), time.process_time()
    plain = plain_fit(x[:tenth], t_x[:tenth], T[:tenth])
    plain_seconds = (time.perf_counter() - start) * args.customers / tenth
    plain_cpu = (time.process_time() - cpu) * args.customers / tenth
    total = fit_seconds + spend_seconds
    verdict = "ok" if total < TARGET_SECONDS else "SLOW"
    load_after = os.getloadavg()

    print(f"{args.customers:,} simulated customers, {int(repeat.sum()):,} with repeat purchases.")
    print("| step | seconds | CPU seconds | note |")
    print("|---|---:|---:|---|")
    print(
        f"| BG/NBD fit with standard errors | {fit_seconds:.1f} | {fit_cpu:.1f} | "
        f"{_params(purchases)} |"
    )
    print(
        f"| Gamma-Gamma fit with standard errors | {spend_seconds:.1f} | {spend_cpu:.1f} | "
        f"{_params(spend)} |"
    )
    print(
        f"| both fits | {total:.1f} | {fit_cpu + spend_cpu:.1f} | target < "
        f"{TARGET_SECONDS:.0f} s ({verdict}) |"
    )
    print(f"| scoring everyone | {score_seconds:.1f} | | P(alive), 90-day purchases, spend |")
    print(
        f"| baseline: plain BG/NBD fit | {plain_seconds:.1f} | {plain_cpu:.1f} | per-customer "
        f"likelihood, {tenth:,} customers x {args.customers // tenth}; ratio "
        f"{plain_seconds / fit_seconds:.1f}x; r, alpha, a, b = "
        f"{', '.join(f'{v:.3f}' for v in plain)} |"
    )
    print("True: " + ", ".join(f"{k} = {v}" for k, v in {**TRUE, **SPEND}.items()) + ".")
    print(
        f"Load average (1, 5, 15 min) before {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after {', '.join(f'{v:.2f}' for v in load_after)}; {os.cpu_count()} cores."
    )


def _params(fit: object) -> str:
    from campaigns.personalization.clv._mle import Fit

    assert isinstance(fit, Fit)
    return ", ".join(
        f"{n} = {v:.3f} ± {e:.3f}"
        for n, v, e in zip(fit.names, fit.values, fit.standard_errors, strict=True)
    )


if __name__ == "__main__":
    main()
