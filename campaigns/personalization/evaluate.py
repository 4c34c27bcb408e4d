"""Offline evaluation of the recommenders on a time split of the transaction log.

Everything bought before the cutoff trains; what each customer bought in the ``test_days`` after
it is what a good recommendation would have named. Every method, the baselines included, obeys
the same rule about recently bought products, so the comparison is fair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.recommender import (
    Method,
    Recommender,
    RecommenderSettings,
    fit_recommender,
    recommend,
)

#: The methods evaluated, in table order (``random`` is the floor every method must beat).
EVALUATED: tuple[str, ...] = ("cf", "content", "blend", "popular", "random")


@dataclass(frozen=True)
class MethodScore:
    """One method's mean precision@k, recall@k and hit rate over the evaluated customers."""

    method: str
    precision: float
    recall: float
    hit_rate: float


@dataclass(frozen=True)
class Evaluation:
    """The result of :func:`evaluate_recommenders`.

    ``scores`` is empty when the data cannot be evaluated; ``note`` says why.
    """

    cutoff: datetime
    test_days: int
    k: int
    customers: int
    scores: list[MethodScore]
    note: str = ""

    def to_json(self) -> dict[str, object]:
        """The evaluation as ``campaign recommend evaluate --format json`` prints it."""
        return {
            "cutoff": self.cutoff.isoformat(timespec="seconds"),
            "test_days": self.test_days,
            "k": self.k,
            "customers": self.customers,
            "methods": [
                {
                    "method": s.method,
                    "precision": s.precision,
                    "recall": s.recall,
                    "hit_rate": s.hit_rate,
                }
                for s in self.scores
            ],
            "note": self.note or None,
        }

    def score(self, method: str) -> MethodScore:
        """The score of ``method``."""
        return next(s for s in self.scores if s.method == method)


def evaluate_recommenders(
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    k: int = 10,
    test_days: int = 90,
    settings: RecommenderSettings | None = None,
    segments: pd.Series | None = None,
    seed: int = 0,
    methods: Sequence[str] = EVALUATED,
    only: Iterable[str] | None = None,
) -> Evaluation:
    """Fit on all but the last ``test_days`` of ``transactions`` and score the top ``k``.

    Evaluated customers are those who bought in the test window (a customer without history
    before the cutoff gets the popular-in-segment fallback, as in a real run); with ``only``,
    those of them in ``only`` (the models still learn from everyone).
    """
    if transactions.empty:
        raise PersonalizationError("no transactions in the store: there is nothing to evaluate")
    end = pd.Timestamp(transactions["invoiced_at"].max())
    cutoff = (end - pd.Timedelta(days=test_days)).to_pydatetime()
    test = transactions[transactions["invoiced_at"] >= pd.Timestamp(cutoff)]
    train = transactions[transactions["invoiced_at"] < pd.Timestamp(cutoff)]
    distinct = transactions["product_id"].nunique()
    if distinct < 2:
        return Evaluation(cutoff, test_days, k, 0, [], note=_no_products_note(train, test))
    # Customers who bought on both sides of the cutoff: those without history before it (new
    # sign-ups) get the same popular list from every method and only blur the comparison.
    tested = pd.Index(test["customer_id"].astype(str).unique())
    cold = int((~tested.isin(train["customer_id"].astype(str).unique())).sum())
    tested = tested[tested.isin(train["customer_id"].astype(str).unique())]
    if tested.empty:
        return Evaluation(
            cutoff, test_days, k, 0, [], note="nobody bought on both sides of the cutoff"
        )
    model = fit_recommender(train, products, tested, cutoff, segments, settings)
    relevant = _relevant(test, model)
    rows = np.arange(len(tested), dtype=np.int64)
    if only is not None:
        rows = rows[tested.isin(pd.Index([str(c) for c in only]))]
        relevant = relevant[rows]
    scores = []
    for method in methods:
        if method == "random":
            picks = _random(model, rows, k, seed)
        else:
            picks = recommend(model, rows, k, _method(method))
        scores.append(_score(method, picks, relevant, k))
    note = (
        f"{cold:,} customers who bought in the test window had no purchase before the cutoff and "
        "are not evaluated (every method gives them the popular-in-segment list)"
        if cold
        else ""
    )
    return Evaluation(cutoff, test_days, k, len(rows), scores, note)


def _method(name: str) -> Method:
    if name not in ("cf", "content", "blend", "popular"):
        raise PersonalizationError(f"unknown recommendation method {name!r}")
    return name  # type: ignore[return-value]


def _relevant(test: pd.DataFrame, model: Recommender) -> sp.csr_matrix:
    rows = model.customers.get_indexer(pd.Index(test["customer_id"].astype(str)))
    cols = model.products.index.get_indexer(pd.Index(test["product_id"].astype(str)))
    keep = (rows >= 0) & (cols >= 0)
    shape = (len(model.customers), len(model.products))
    matrix = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _random(
    model: Recommender, rows: npt.NDArray[np.int64], k: int, seed: int
) -> npt.NDArray[np.int64]:
    """``k`` products drawn uniformly per customer, never an excluded one."""
    rng = np.random.default_rng(seed)
    n_products = len(model.products)
    out = np.empty((len(rows), min(k, n_products)), dtype=np.int64)
    for start in range(0, len(rows), 5000):
        chunk = rows[start : start + 5000]
        noise = rng.random((len(chunk), n_products))
        noise[model.excluded[chunk].toarray() > 0] = -1.0
        out[start : start + 5000] = np.argsort(-noise, axis=1)[:, : out.shape[1]]
    return out


def _score(
    method: str, picks: npt.NDArray[np.int64], relevant: sp.csr_matrix, k: int
) -> MethodScore:
    n = picks.shape[0]
    valid = picks >= 0
    rows = np.repeat(np.arange(n), picks.shape[1])[valid.ravel()]
    recommended = sp.csr_matrix((np.ones(len(rows)), (rows, picks[valid])), shape=relevant.shape)
    hits = np.asarray(recommended.multiply(relevant).sum(axis=1)).ravel()
    wanted = np.asarray(relevant.sum(axis=1)).ravel()
    has = wanted > 0
    if not has.any():
        return MethodScore(method, 0.0, 0.0, 0.0)
    return MethodScore(
        method=method,
        precision=float(np.mean(hits[has] / k)),
        recall=float(np.mean(hits[has] / wanted[has])),
        hit_rate=float(np.mean(hits[has] > 0)),
    )


def _no_products_note(train: pd.DataFrame, test: pd.DataFrame) -> str:
    """Why a log without product ids cannot be evaluated, and the one thing it does say."""
    before = set(train["customer_id"].astype(str))
    again = before & set(test["customer_id"].astype(str))
    share = len(again) / len(before) if before else 0.0
    return (
        "the transactions carry a single product id, so they say when customers bought but not "
        "what: item recommendations cannot be evaluated. Timing is all there is: "
        f"{len(again):,} of the {len(before):,} customers who bought before the cutoff "
        f"({share:.1%}) bought again in the test window."
    )
