"""Maximum likelihood for the lifetime-value models: a fit over log-parameters with scipy, and
standard errors from the inverse of the observed information (the Hessian of the negative
log-likelihood at the optimum, by central differences)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from campaigns.personalization.errors import PersonalizationError

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Fit:
    """Fitted parameters of one model.

    ``standard_errors`` are NaN when the Hessian is not positive definite (the optimum is flat
    or on a boundary in some direction).
    """

    model: str
    names: tuple[str, ...]
    values: tuple[float, ...]
    standard_errors: tuple[float, ...]
    log_likelihood: float
    customers: int
    converged: bool

    def __getitem__(self, name: str) -> float:
        return self.values[self.names.index(name)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: per parameter its value and standard error."""
        return {
            "model": self.model,
            "parameters": [
                {"name": n, "value": v, "standard_error": None if math.isnan(s) else s}
                for n, v, s in zip(self.names, self.values, self.standard_errors, strict=True)
            ],
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
            "converged": self.converged,
        }


def fit_mle(
    model: str,
    names: Sequence[str],
    negative_ll: Callable[[Floats], float],
    start: Sequence[float],
    customers: int,
    gradient: Callable[[Floats], Floats] | None = None,
) -> Fit:
    """Minimise ``negative_ll`` (a function of the positive parameters) over their logarithms.

    The objective is the mean per customer, so that tolerances do not depend on how many
    customers there are. Nelder-Mead finds the basin without gradients; BFGS then polishes the
    optimum so that the parameters agree with published estimates to their printed precision.
    """
    from scipy.optimize import minimize

    scale = 1.0 / max(customers, 1)

    def objective(log_params: Floats) -> float:
        value = negative_ll(np.exp(log_params)) * scale
        return value if math.isfinite(value) else 1e300

    initial = np.log(np.asarray(start, dtype=np.float64))
    if gradient is not None:
        # With the analytic gradient (chain rule through exp), BFGS alone converges quickly.
        def jacobian(log_params: Floats) -> Floats:
            params = np.exp(log_params)
            return np.asarray(gradient(params) * params * scale, dtype=np.float64)

        first = minimize(objective, initial, jac=jacobian, method="BFGS", options={"gtol": 1e-10})
        polished = minimize(
            objective, first.x, jac=jacobian, method="L-BFGS-B", options={"gtol": 1e-12}
        )
    else:
        first = minimize(
            objective,
            initial,
            method="Nelder-Mead",
            options={"xatol": 1e-5, "fatol": 1e-9, "maxiter": 5_000},
        )
        polished = minimize(objective, first.x, method="BFGS", options={"gtol": 1e-9})
    best = polished if polished.fun <= first.fun else first
    values = np.exp(best.x)
    if not np.all(np.isfinite(values)) or not math.isfinite(best.fun) or best.fun >= 1e300:
        raise PersonalizationError(f"the {model} model did not converge on this data")
    errors = standard_errors(negative_ll, values, gradient)
    return Fit(
        model=model,
        names=tuple(names),
        values=tuple(float(v) for v in values),
        standard_errors=tuple(float(e) for e in errors),
        log_likelihood=-float(negative_ll(values)),
        customers=customers,
        converged=bool(first.success or polished.success),
    )


def hessian(function: Callable[[Floats], float], at: Floats) -> Floats:
    """The Hessian of ``function`` at ``at`` by central differences, steps relative to each
    parameter (1e-4 of its size)."""
    k = len(at)
    steps = 1e-4 * np.maximum(np.abs(at), 1e-3)
    result = np.empty((k, k))
    centre = function(at)
    for i in range(k):
        for j in range(i, k):
            if i == j:
                up, down = at.copy(), at.copy()
                up[i] += steps[i]
                down[i] -= steps[i]
                value = (function(up) - 2 * centre + function(down)) / steps[i] ** 2
            else:
                corners = []
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    point = at.copy()
                    point[i] += si * steps[i]
                    point[j] += sj * steps[j]
                    corners.append(function(point))
                value = (corners[0] - corners[1] - corners[2] + corners[3]) / (
                    4 * steps[i] * steps[j]
                )
            result[i, j] = result[j, i] = value
    return result


def standard_errors(
    negative_ll: Callable[[Floats], float],
    at: Floats,
    gradient: Callable[[Floats], Floats] | None = None,
) -> Floats:
    """Square roots of the diagonal of the inverse Hessian of the negative log-likelihood (by
    central differences of the gradient when there is one, else of the function)."""
    at = np.asarray(at, dtype=np.float64)
    matrix = hessian(negative_ll, at) if gradient is None else gradient_hessian(gradient, at)
    try:
        covariance = np.linalg.inv(matrix)
    except np.linalg.LinAlgError:
        return np.full(len(at), np.nan)
    variances = np.diag(covariance)
    if not np.all(np.isfinite(variances)) or np.any(variances <= 0):
        return np.full(len(at), np.nan)
    return np.sqrt(variances)


def gradient_hessian(gradient: Callable[[Floats], Floats], at: Floats) -> Floats:
    """The Hessian as central differences of the gradient, symmetrised."""
    k = len(at)
    steps = 1e-5 * np.maximum(np.abs(at), 1e-3)
    rows = []
    for i in range(k):
        up, down = at.copy(), at.copy()
        up[i] += steps[i]
        down[i] -= steps[i]
        rows.append((gradient(up) - gradient(down)) / (2 * steps[i]))
    matrix = np.array(rows)
    return np.asarray((matrix + matrix.T) / 2, dtype=np.float64)


def compress(*columns: Floats) -> tuple[list[Floats], Floats, npt.NDArray[np.int64]]:
    """Distinct rows of the given columns, how many customers share each, and each customer's
    row: the likelihood of a million customers is that of their few distinct histories."""
    stacked = np.column_stack(columns)
    distinct, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return (
        [distinct[:, i] for i in range(distinct.shape[1])],
        counts.astype(np.float64),
        inverse.reshape(-1).astype(np.int64),
    )
