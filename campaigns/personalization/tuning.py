"""Choosing a recommender's method and weights by a time split, never by hand.

Given the purchases before a time ``at``, the last ``test_days`` of them are held out: the
candidates are fitted on what came before and judged by NDCG@k on what customers bought in the
held-out days (for discover, only what was new to them). The winner's settings are then used
for a fit on everything before ``at``. Nothing after ``at`` is read, so an evaluation that tunes
before its own cutoff stays honest.

- **replenish**: the time decay's half-life and the weight of the neighbours' products;
- **discover**: item-to-item CF (two cosine exponents) against EASE (two penalties). CF stays
  the choice unless EASE is better by more than 2% of NDCG: it is the faster and simpler model
  and, where it is as good, the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp

from campaigns.personalization.interactions import build_interactions
from campaigns.personalization.ranking import per_customer
from campaigns.personalization.recommend_cf import item_similarity
from campaigns.personalization.recommend_ease import ease_similarity
from campaigns.personalization.recommender import (
    Purpose,
    Recommender,
    RecommenderSettings,
    fit_recommender,
    recommend,
)

HALF_LIVES: tuple[float | None, ...] = (60.0, 180.0, 365.0, None)
NEIGHBOUR_WEIGHTS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 3.0)
ALPHAS: tuple[float, ...] = (0.5, 1.0)
PENALTIES: tuple[float, ...] = (100.0, 400.0)
#: A candidate model and method -> its validation NDCG@k.
Judge = Callable[[Recommender, str], float]
#: EASE must beat CF's validation NDCG by this share to be chosen over it.
EASE_MARGIN = 0.02


@dataclass(frozen=True)
class Tuning:
    """The chosen method and settings, and every candidate's validation NDCG@k."""

    purpose: str
    method: str
    settings: RecommenderSettings
    candidates: list[tuple[str, float]]
    customers: int
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "purpose": self.purpose,
            "method": self.method,
            "customers": self.customers,
            "candidates": [{"candidate": c, "ndcg": v} for c, v in self.candidates],
            "note": self.note or None,
        }


def relevant_matrix(window: pd.DataFrame, customers: pd.Index, products: pd.Index) -> sp.csr_matrix:
    """1 where a customer bought a product in ``window`` (customers x products)."""
    rows = customers.get_indexer(pd.Index(window["customer_id"].astype(str)))
    cols = products.get_indexer(pd.Index(window["product_id"].astype(str)))
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])),
        shape=(len(customers), len(products)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def new_to_customer(relevant: sp.csr_matrix, bought: sp.csr_matrix) -> sp.csr_matrix:
    """``relevant`` without what each customer had bought before (``bought``'s nonzeros)."""
    mask = bought.copy().tocsr()
    mask.data[:] = 1.0
    fresh = (relevant - relevant.multiply(mask)).tocsr()
    fresh.eliminate_zeros()
    return fresh


def tune(
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    at: datetime,
    purpose: Purpose,
    k: int = 10,
    test_days: int = 30,
    base: RecommenderSettings | None = None,
    max_customers: int = 5000,
    seed: int = 0,
) -> Tuning:
    """Choose ``purpose``'s method and weights on the ``test_days`` before ``at``."""
    base = base or RecommenderSettings()
    default = "repeat" if purpose == "replenish" else "cf"
    before = transactions[transactions["invoiced_at"] < pd.Timestamp(at)]
    split = pd.Timestamp(at) - pd.Timedelta(days=test_days)
    train = before[before["invoiced_at"] < split]
    window = before[before["invoiced_at"] >= split]
    customers = pd.Index(train["customer_id"].astype(str).unique())
    if train.empty or window.empty or customers.empty:
        return Tuning(
            purpose, default, base, [], 0, note="too little history to tune: defaults used"
        )
    model = fit_recommender(train, products, customers, split.to_pydatetime(), settings=base)
    relevant = relevant_matrix(window, customers, model.products.index)
    if purpose == "discover":
        relevant = new_to_customer(relevant, model.interactions.matrix)
    rows = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int64)
    if len(rows) > max_customers:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_customers, replace=False))
    if len(rows) == 0:
        return Tuning(purpose, default, base, [], 0, note="nobody to validate on: defaults used")
    judged = relevant[rows]

    def ndcg(candidate: Recommender, method: str) -> float:
        picks = recommend(candidate, rows, k, method, purpose)  # type: ignore[arg-type]
        return float(per_customer(picks, judged, k)["ndcg"].mean())

    if purpose == "replenish":
        return _tune_replenish(model, train, split.to_pydatetime(), base, ndcg, len(rows))
    return _tune_discover(model, base, ndcg, len(rows))


def _tune_replenish(
    model: Recommender,
    train: pd.DataFrame,
    split: datetime,
    base: RecommenderSettings,
    ndcg: Judge,
    customers: int,
) -> Tuning:
    candidates: list[tuple[str, float]] = []
    best: tuple[float, RecommenderSettings] | None = None
    for half_life in HALF_LIVES:
        interactions = build_interactions(
            train,
            model.customers,
            model.products.index,
            split,
            base.weighting,
            base.recent_days,
            half_life,
        )
        for weight in NEIGHBOUR_WEIGHTS:
            settings = dataclasses.replace(base, half_life_days=half_life, neighbour_weight=weight)
            candidate = dataclasses.replace(model, interactions=interactions, settings=settings)
            score = ndcg(candidate, "repeat")
            life = "no decay" if half_life is None else f"half-life {half_life:g} days"
            candidates.append((f"repeat, {life}, neighbours x{weight:g}", score))
            if best is None or score > best[0]:
                best = (score, settings)
    assert best is not None
    return Tuning("replenish", "repeat", best[1], candidates, customers)


def _tune_discover(
    model: Recommender, base: RecommenderSettings, ndcg: Judge, customers: int
) -> Tuning:
    candidates: list[tuple[str, float]] = []
    best_cf: tuple[float, float] | None = None
    for alpha in ALPHAS:
        similarity = dict(model.similarity)
        similarity["cf"] = item_similarity(model.interactions.matrix, base.neighbours, alpha)
        score = ndcg(dataclasses.replace(model, similarity=similarity), "cf")
        candidates.append((f"cf, cosine exponent {alpha:g}", score))
        if best_cf is None or score > best_cf[0]:
            best_cf = (score, alpha)
    best_ease: tuple[float, float] | None = None
    for penalty in PENALTIES:
        similarity = dict(model.similarity)
        similarity["ease"] = ease_similarity(
            model.interactions.matrix, penalty, base.ease_neighbours
        )
        score = ndcg(dataclasses.replace(model, similarity=similarity), "ease")
        candidates.append((f"ease, penalty {penalty:g}", score))
        if best_ease is None or score > best_ease[0]:
            best_ease = (score, penalty)
    assert best_cf is not None
    assert best_ease is not None
    settings = dataclasses.replace(base, alpha=best_cf[1], ease_penalty=best_ease[1])
    method = "ease" if best_ease[0] > best_cf[0] * (1.0 + EASE_MARGIN) else "cf"
    return Tuning("discover", method, settings, candidates, customers)
