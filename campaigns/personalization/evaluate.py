"""Offline evaluation of the recommenders, one task at a time, on rolling time splits.

For each cutoff (the last ``test_days`` of the log, then the ``test_days`` before those, and so
on for ``splits`` cutoffs) everything bought before the cutoff trains, and what each customer
bought in the ``test_days`` after it is what a good recommendation would have named:

- **replenish**: everything they bought in the window, repeats included. Our ``repeat`` model
  against the customer's own most-bought products (``rebuy``) and the shop's best sellers with
  past purchases allowed (``popular``).
- **discover**: only the products new to them (never bought before the cutoff); nothing they
  bought before may be recommended. CF and EASE against the best sellers new to the customer
  (``popular``) and ``random`` picks.

The model's method and weights are tuned (:mod:`.tuning`) on the ``test_days`` just before each
cutoff, with nothing after it. Customers evaluated are those who bought on both sides of the
cutoff (for discover: with at least one new product in the window); each method is reported
with precision, recall, NDCG, MAP and hit rate at k, its catalogue coverage (distinct products
recommended to them, as a share of the catalogue), a 95% bootstrap interval over customers, and
its paired difference from the task's main baseline (same resampled customers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.ranking import METRICS, Estimate, bootstrap_means, per_customer
from campaigns.personalization.recommender import (
    Method,
    Purpose,
    Recommender,
    RecommenderSettings,
    fit_recommender,
    recommend,
)
from campaigns.personalization.tuning import Tuning, new_to_customer, relevant_matrix, tune

#: Per task: the methods evaluated in table order, and the baseline differences are taken from.
TASKS: dict[str, tuple[tuple[str, ...], str]] = {
    "replenish": (("repeat", "rebuy", "popular"), "rebuy"),
    "discover": (("ease", "cf", "popular", "random"), "popular"),
}
PURPOSES: tuple[str, ...] = ("replenish", "discover")


@dataclass(frozen=True)
class MethodScore:
    """One method on one split: each metric's mean over customers with its interval, and its
    paired difference from the task's baseline (none for the baseline itself)."""

    method: str
    metrics: dict[str, Estimate]
    coverage: float
    difference: dict[str, Estimate] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            **{name: e.to_json() for name, e in self.metrics.items()},
            "coverage": self.coverage,
            "difference_from_baseline": None
            if self.difference is None
            else {name: e.to_json() for name, e in self.difference.items()},
        }


@dataclass(frozen=True)
class Split:
    """One cutoff of one task."""

    cutoff: datetime
    customers: int
    scores: list[MethodScore]
    tuning: Tuning

    def score(self, method: str) -> MethodScore:
        """The score of ``method``."""
        return next(s for s in self.scores if s.method == method)

    def to_json(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(timespec="seconds"),
            "customers": self.customers,
            "methods": [s.to_json() for s in self.scores],
            "tuning": self.tuning.to_json(),
        }


@dataclass(frozen=True)
class TaskEvaluation:
    """Every split of one task, the most recent first."""

    purpose: str
    baseline: str
    splits: list[Split]
    note: str = ""

    @property
    def latest(self) -> Split:
        return self.splits[0]

    def mean(self, method: str, metric: str) -> float:
        """``metric`` of ``method`` averaged over the splits."""
        return float(np.mean([s.score(method).metrics[metric].value for s in self.splits]))

    def to_json(self) -> dict[str, object]:
        methods = [s.method for s in self.splits[0].scores] if self.splits else []
        return {
            "purpose": self.purpose,
            "baseline": self.baseline,
            "splits": [s.to_json() for s in self.splits],
            "mean_over_splits": {
                m: {metric: self.mean(m, metric) for metric in METRICS} for m in methods
            },
            "note": self.note or None,
        }


@dataclass(frozen=True)
class Evaluation:
    """The result of :func:`evaluate_recommenders`; ``tasks`` is empty (``note`` says why) when
    the data cannot be evaluated."""

    k: int
    test_days: int
    cutoffs: list[datetime]
    tasks: list[TaskEvaluation]
    note: str = ""
    resamples: int = 1000

    def task(self, purpose: str) -> TaskEvaluation:
        """The evaluation of ``purpose``."""
        return next(t for t in self.tasks if t.purpose == purpose)

    def to_json(self) -> dict[str, object]:
        """The evaluation as ``campaign recommend evaluate --format json`` prints it."""
        return {
            "k": self.k,
            "test_days": self.test_days,
            "cutoffs": [c.isoformat(timespec="seconds") for c in self.cutoffs],
            "bootstrap_resamples": self.resamples,
            "tasks": [t.to_json() for t in self.tasks],
            "note": self.note or None,
        }


def evaluate_recommenders(
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    k: int = 10,
    test_days: int = 30,
    splits: int = 3,
    purposes: tuple[str, ...] = PURPOSES,
    settings: RecommenderSettings | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Evaluate each task in ``purposes`` on ``splits`` rolling cutoffs, ``test_days`` apart."""
    if transactions.empty:
        raise PersonalizationError("no transactions in the store: there is nothing to evaluate")
    for purpose in purposes:
        if purpose not in TASKS:
            raise PersonalizationError(
                f"unknown recommendation purpose {purpose!r}; expected discover or replenish"
            )
    end = pd.Timestamp(transactions["invoiced_at"].max())
    cutoffs = [
        (end - pd.Timedelta(days=test_days * step)).to_pydatetime() for step in range(1, splits + 1)
    ]
    if transactions["product_id"].nunique() < 2:
        first = transactions[transactions["invoiced_at"] < pd.Timestamp(cutoffs[0])]
        after = transactions[transactions["invoiced_at"] >= pd.Timestamp(cutoffs[0])]
        return Evaluation(
            k, test_days, cutoffs, [], _no_products_note(first, after, test_days), resamples
        )
    cutoffs = [c for c in cutoffs if (transactions["invoiced_at"] < pd.Timestamp(c)).any()]
    results: dict[str, list[Split]] = {p: [] for p in purposes}
    cold_latest = 0
    for number, cutoff in enumerate(cutoffs):
        window_end = pd.Timestamp(cutoff) + pd.Timedelta(days=test_days)
        at = pd.Timestamp(cutoff)
        train = transactions[transactions["invoiced_at"] < at]
        window = transactions[
            (transactions["invoiced_at"] >= at) & (transactions["invoiced_at"] <= window_end)
        ]
        known = pd.Index(train["customer_id"].astype(str).unique())
        if number == 0:
            buyers = pd.Index(window["customer_id"].astype(str).unique())
            cold_latest = int((~buyers.isin(known)).sum())
        for purpose in purposes:
            results[purpose].append(
                _evaluate_split(
                    Window(train, window, known, cutoff),
                    products,
                    purpose,
                    k,
                    test_days,
                    settings,
                    resamples,
                    seed,
                )
            )
    note = (
        f"{cold_latest:,} customers who bought in the latest test window had no purchase before "
        "its cutoff and are not evaluated (every method gives them the same best sellers)"
        if cold_latest
        else ""
    )
    tasks = [
        TaskEvaluation(p, TASKS[p][1], [s for s in results[p] if s.customers > 0]) for p in purposes
    ]
    tasks = [
        t if t.splits else TaskEvaluation(t.purpose, t.baseline, [], _nobody(t.purpose))
        for t in tasks
    ]
    if not any(t.splits for t in tasks):
        return Evaluation(k, test_days, cutoffs, [], "nobody bought on both sides of a cutoff")
    return Evaluation(k, test_days, cutoffs, [t for t in tasks if t.splits], note, resamples)


def _nobody(purpose: str) -> str:
    if purpose == "discover":
        return "nobody bought a product new to them in a test window"
    return "nobody bought on both sides of a cutoff"


@dataclass(frozen=True)
class Window:
    """One cutoff: the purchases before it, those in its test window, the known customers."""

    train: pd.DataFrame
    test: pd.DataFrame
    customers: pd.Index
    cutoff: datetime


def _evaluate_split(
    split: Window,
    products: pd.DataFrame,
    purpose: str,
    k: int,
    test_days: int,
    settings: RecommenderSettings | None,
    resamples: int,
    seed: int,
) -> Split:
    task: Purpose = "replenish" if purpose == "replenish" else "discover"
    train, window, customers, cutoff = split.train, split.test, split.customers, split.cutoff
    tuning = tune(train, products, cutoff, task, k, test_days, settings, seed=seed)
    model = fit_recommender(train, products, customers, cutoff, settings=tuning.settings)
    relevant = relevant_matrix(window, model.customers, model.products.index)
    if task == "discover":
        relevant = new_to_customer(relevant, model.interactions.matrix)
    rows = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int64)
    judged = relevant[rows]
    methods, baseline = TASKS[purpose]
    per: dict[str, dict[str, npt.NDArray[np.float64]]] = {}
    coverage: dict[str, float] = {}
    for method in methods:
        if method == "random":
            picks = _random(model, rows, k, seed)
        else:
            picks = recommend(model, rows, k, _as_method(method), task)
        per[method] = per_customer(picks, judged, k)
        coverage[method] = len(np.unique(picks[picks >= 0])) / len(model.products)
    scores = []
    for method in methods:
        arrays = {f"m:{name}": per[method][name] for name in METRICS}
        if method != baseline:
            arrays |= {f"d:{n}": per[method][n] - per[baseline][n] for n in METRICS}
        estimates = bootstrap_means(arrays, resamples, seed)
        scores.append(
            MethodScore(
                method,
                {n: estimates[f"m:{n}"] for n in METRICS},
                coverage[method],
                None if method == baseline else {n: estimates[f"d:{n}"] for n in METRICS},
            )
        )
    return Split(cutoff, len(rows), scores, tuning)


def _as_method(name: str) -> Method:
    return name  # type: ignore[return-value]


def _random(
    model: Recommender, rows: npt.NDArray[np.int64], k: int, seed: int
) -> npt.NDArray[np.int64]:
    """``k`` products drawn uniformly per customer, never one they bought before."""
    rng = np.random.default_rng(seed)
    n_products = len(model.products)
    out = np.empty((len(rows), min(k, n_products)), dtype=np.int64)
    bought: sp.csr_matrix = model.excluded
    for start in range(0, len(rows), 5000):
        chunk = rows[start : start + 5000]
        noise = rng.random((len(chunk), n_products))
        noise[bought[chunk].toarray() > 0] = -1.0
        out[start : start + 5000] = np.argsort(-noise, axis=1)[:, : out.shape[1]]
    return out


def _no_products_note(train: pd.DataFrame, test: pd.DataFrame, test_days: int) -> str:
    """Why a log without product ids cannot be evaluated, and the one thing it does say."""
    before = set(train["customer_id"].astype(str))
    again = before & set(test["customer_id"].astype(str))
    share = len(again) / len(before) if before else 0.0
    return (
        "the transactions carry a single product id, so they say when customers bought but not "
        "what: item recommendations cannot be evaluated. Timing is all there is: "
        f"{len(again):,} of the {len(before):,} customers who bought before the cutoff "
        f"({share:.1%}) bought again in the last {test_days} days."
    )
