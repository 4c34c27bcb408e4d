"""Ranking metrics per customer, and bootstrap intervals over customers.

Each customer's top ``k`` is judged against the products they bought in the test window (for
discover: only those new to them). With ``hits`` the 0/1 relevance of each rank and ``n`` the
number of relevant products:

- precision@k = hits / k; recall@k = hits / n; hit rate = at least one hit;
- NDCG@k = sum of ``hit_i / log2(i + 1)`` over the ranks, divided by its best possible value
  (``min(n, k)`` hits at the top);
- MAP@k (average precision) = sum of precision@i at each hit, divided by ``min(n, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit_rate")

_Floats = npt.NDArray[np.float64]


def per_customer(
    picks: npt.NDArray[np.int64], relevant: sp.csr_matrix, k: int
) -> dict[str, _Floats]:
    """Each metric per customer (row of ``picks``/``relevant``); -1 picks never hit.

    :param picks: customers x ranks product positions, best first
    :param relevant: customers x products, nonzero where the customer bought the product
    """
    relevant = relevant.tocsr()
    n_rows, n_products = relevant.shape
    picks = picks[:, :k]
    wanted = np.diff(relevant.indptr).astype(np.float64)
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(relevant.indptr))
    keys = np.sort(row_of * n_products + relevant.indices.astype(np.int64))
    pick_keys = np.arange(n_rows, dtype=np.int64)[:, None] * n_products + picks
    hits = np.isin(pick_keys, keys) & (picks >= 0)
    hits_f = np.zeros((n_rows, k))
    hits_f[:, : hits.shape[1]] = hits
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(wanted, k).astype(np.int64)]
    found = hits_f.sum(axis=1)
    safe = np.maximum(wanted, 1.0)
    precision_at = np.cumsum(hits_f, axis=1) / np.arange(1, k + 1)
    return {
        "precision": found / k,
        "recall": found / safe,
        "ndcg": np.divide(hits_f @ discount, ideal, out=np.zeros(n_rows), where=ideal > 0),
        "map": (precision_at * hits_f).sum(axis=1) / np.minimum(safe, k),
        "hit_rate": (found > 0).astype(np.float64),
    }


@dataclass(frozen=True)
class Estimate:
    """A mean over customers with its 95% percentile bootstrap interval."""

    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def bootstrap_means(values: dict[str, _Floats], resamples: int, seed: int) -> dict[str, Estimate]:
    """Each array's mean with a 95% percentile interval from ``resamples`` resamples of the
    customers; every array is resampled with the same customers, so differences stay paired."""
    n = len(next(iter(values.values())))
    if n == 0:
        return {name: Estimate(0.0, 0.0, 0.0) for name in values}
    rng = np.random.default_rng(seed)
    means: dict[str, list[_Floats]] = {name: [] for name in values}
    block = max(1, 2_000_000 // n)  # resamples drawn at once: a few million indices at most
    for start in range(0, resamples, block):
        draws = rng.integers(0, n, size=(min(block, resamples - start), n))
        for name, array in values.items():
            means[name].append(array[draws].mean(axis=1))
    out = {}
    for name, array in values.items():
        mean = float(array.mean())
        if resamples <= 0:
            out[name] = Estimate(mean, mean, mean)
            continue
        low, high = np.percentile(np.concatenate(means[name]), [2.5, 97.5])
        out[name] = Estimate(mean, float(low), float(high))
    return out
