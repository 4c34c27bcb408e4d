"""A fitted recommender: similarity matrices, popularity per segment, and top-k scoring.

Every method scores a customer's products as ``history @ similarity``: collaborative filtering
(``cf``) with the item-to-item cosine of buyers, ``content`` with TF-IDF similarity of names and
categories, ``blend`` with a weighted sum of the two. ``popular`` ranks the customer's segment's
best sellers. New and thin customers, and anyone with fewer candidates than asked for, are
filled from the popular-in-segment list. Products a customer bought in the last
``recent_days`` are never recommended again unless their category is a repeat-purchase kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.interactions import Interactions, Weighting, build_interactions
from campaigns.personalization.recommend_cf import item_similarity, top_neighbours
from campaigns.personalization.recommend_content import content_similarity

Method = Literal["cf", "content", "blend", "popular"]
METHODS: tuple[str, ...] = ("cf", "content", "blend", "popular")

#: Customers scored at once; a chunk's sparse scores stay around a few hundred MB at most.
_CHUNK = 20_000

_IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RecommenderSettings:
    """How a recommender is fitted.

    :param weighting: implicit feedback from the quantity bought, the spend, or 1 per product
    :param neighbours: similar products kept per product
    :param recent_days: products bought this recently are not recommended again...
    :param repeat_categories: ...unless their category is one of these (coffee is bought again)
    :param min_items: customers with fewer distinct products get the popular-in-segment list
    :param blend_weight: the share of collaborative filtering in ``blend`` (content has the rest)
    """

    weighting: Weighting = "binary"
    neighbours: int = 20
    recent_days: int = 90
    repeat_categories: tuple[str, ...] = ()
    min_items: int = 3
    blend_weight: float = 0.7
    alpha: float = 1.0


@dataclass(frozen=True)
class Recommender:
    """A recommender fitted at one time; see :func:`fit_recommender`."""

    at: datetime
    settings: RecommenderSettings
    products: pd.DataFrame  # indexed by product_id: name, category, price
    interactions: Interactions
    similarity: dict[str, sp.csr_matrix]
    #: Each customer's position in ``popular`` (segment), or -1 for the whole shop.
    segment_of: _IntArray
    #: Product positions by descending popularity: row 0 the whole shop, then one per segment.
    popular: list[_IntArray]
    excluded: sp.csr_matrix = field(repr=False)

    @property
    def customers(self) -> pd.Index:
        return self.interactions.customers


def fit_recommender(
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    customers: Iterable[str],
    at: datetime,
    segments: pd.Series | None = None,
    settings: RecommenderSettings | None = None,
) -> Recommender:
    """Fit every method on the purchases before ``at``.

    :param transactions: transaction lines (``customer_id``, ``product_id``, ``quantity``,
        ``unit_price``, ``invoiced_at``)
    :param products: the catalogue (``product_id``, ``name``, ``category``, ``price``)
    :param customers: the customers to recommend for
    :param segments: segment id by customer id, for popular-in-segment; none: the whole shop
    """
    settings = settings or RecommenderSettings()
    unique = products.drop_duplicates("product_id")
    catalogue = unique.set_index(unique["product_id"].astype(str))[["name", "category", "price"]]
    if catalogue.empty:
        raise PersonalizationError("no products in the store: there is nothing to recommend")
    customer_index = pd.Index(pd.Series(list(customers), dtype=str).unique())
    interactions = build_interactions(
        transactions,
        customer_index,
        catalogue.index,
        at,
        settings.weighting,
        settings.recent_days,
    )
    matrix = interactions.matrix
    cf = item_similarity(matrix, settings.neighbours, settings.alpha)
    content = content_similarity(catalogue.reset_index(), settings.neighbours)
    w = settings.blend_weight
    # Pruned again: the sum has up to twice the neighbours, and scoring cost follows them.
    blend = top_neighbours((cf * w + content * (1.0 - w)).tocsr(), settings.neighbours)
    repeat = catalogue["category"].isin(list(settings.repeat_categories)).to_numpy()
    keep_columns = sp.diags((~repeat).astype(np.float32))
    excluded = (interactions.recent @ keep_columns).tocsr()
    excluded.eliminate_zeros()

    buyers = (matrix > 0).astype(np.float32)
    segment_of = np.full(len(customer_index), -1, dtype=np.int64)
    popular = [_by_popularity(buyers)]
    if segments is not None:
        aligned = segments.reindex(customer_index)
        known = aligned.notna().to_numpy()
        codes, uniques = pd.factorize(aligned[known])
        segment_of[known] = codes
        for code in range(len(uniques)):
            rows = np.flatnonzero(segment_of == code)
            popular.append(_by_popularity(buyers[rows], fallback=popular[0]))
    return Recommender(
        at=at,
        settings=settings,
        products=catalogue,
        interactions=interactions,
        similarity={"cf": cf, "content": content, "blend": blend},
        segment_of=segment_of,
        popular=popular,
        excluded=excluded,
    )


def _by_popularity(buyers: sp.csr_matrix, fallback: _IntArray | None = None) -> _IntArray:
    """Product positions by number of buyers, most first (ties by the fallback's order)."""
    counts = np.asarray(buyers.sum(axis=0)).ravel()
    if fallback is None:
        return np.argsort(-counts, kind="stable").astype(np.int64)
    order = np.argsort(-counts[fallback], kind="stable")
    return fallback[order]


def recommend(
    model: Recommender, rows: _IntArray, count: int, method: Method = "blend"
) -> _IntArray:
    """Top ``count`` product positions for customers at ``rows`` (-1: not in the model).

    :return: an array of shape (len(rows), count); -1 pads when the catalogue runs out
    """
    if method not in METHODS:
        raise PersonalizationError(
            f"unknown recommendation method {method!r}; expected one of {', '.join(METHODS)}"
        )
    out = np.full((len(rows), count), -1, dtype=np.int64)
    if count <= 0 or len(rows) == 0:
        return out
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        out[start : start + _CHUNK] = _recommend_chunk(model, chunk, count, method)
    return out


def _recommend_chunk(model: Recommender, rows: _IntArray, count: int, method: Method) -> _IntArray:
    n_products = len(model.products)
    known = rows >= 0
    safe = np.where(known, rows, 0)
    history = model.interactions.matrix[safe]
    excluded = model.excluded[safe]
    if not known.all():
        # Customers not in the model have no history and nothing to exclude.
        _zero_rows(history, ~known)
        _zero_rows(excluded, ~known)
    if method == "popular":
        picks = np.full((len(rows), count), -1, dtype=np.int64)
    else:
        scores = (history @ model.similarity[method]).tocsr()
        thin = np.diff(history.indptr) < model.settings.min_items
        _zero_rows(scores, thin)
        # Drop excluded products: the mask has 1 where excluded, so keep score * (1 - mask).
        scores = (scores - scores.multiply(excluded)).tocsr()
        scores.eliminate_zeros()
        picks = top_k(scores, min(count, n_products))
        if picks.shape[1] < count:
            picks = np.hstack([picks, np.full((len(rows), count - picks.shape[1]), -1)])
    segment = np.where(known, model.segment_of[safe], -1)
    _fill_popular(model, picks, segment, excluded)
    return picks


def _zero_rows(matrix: sp.csr_matrix, rows: npt.NDArray[np.bool_]) -> None:
    """Set the stored values of ``rows`` to zero in place (and drop them)."""
    if rows.any():
        matrix.data[np.repeat(rows, np.diff(matrix.indptr))] = 0.0
        matrix.eliminate_zeros()


def top_k(scores: sp.csr_matrix, k: int) -> _IntArray:
    """The column indices of each row's ``k`` largest entries, best first; -1 pads.

    ``k`` passes of a row-wise maximum (``np.maximum.reduceat``) over the nonzeros, each taking
    the best remaining entry of every row: linear in the nonzeros, where sorting them all was
    ten times slower at a million customers. Ties go to the entry stored first.
    """
    n = scores.shape[0]
    out = np.full((n, k), -1, dtype=np.int64)
    if scores.nnz == 0 or k == 0:
        return out
    data = scores.data.astype(np.float64)
    indices = scores.indices
    lengths = np.diff(scores.indptr)
    filled = lengths > 0
    starts = scores.indptr[:-1][filled]
    row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
    rows = np.flatnonzero(filled)
    for rank in range(k):
        best = np.maximum.reduceat(data, starts)
        row_best = np.full(n, -np.inf)
        row_best[rows] = best
        at_best = np.flatnonzero((data == row_best[row_of]) & (data > -np.inf))
        if len(at_best) == 0:
            break
        owner = row_of[at_best]
        first = np.ones(len(at_best), dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        chosen = at_best[first]
        out[row_of[chosen], rank] = indices[chosen]
        data[chosen] = -np.inf
    return out


def _fill_popular(
    model: Recommender, picks: _IntArray, segment: _IntArray, excluded: sp.csr_matrix
) -> None:
    """Fill the -1 slots of ``picks`` in place from each customer's popular-in-segment list,
    skipping products already picked or excluded. Vectorised per segment: thin customers can
    be a large share of a million."""
    count = picks.shape[1]
    short = picks[:, -1] < 0
    for code in np.unique(segment[short]):
        rows = np.flatnonzero(short & (segment == code))
        blocked_most = int(np.diff(excluded.indptr)[rows].max(initial=0))
        ranked = model.popular[int(code) + 1][: 2 * count + blocked_most]
        blocked = (picks[rows][:, :, None] == ranked[None, None, :]).any(axis=1)
        blocked |= excluded[rows][:, ranked].toarray() > 0
        available = np.cumsum(~blocked, axis=1)
        filled = (picks[rows] >= 0).sum(axis=1)
        for slot in range(count):
            need = slot - filled + 1  # the need-th available product goes into this slot
            open_slot = need > 0
            position = np.argmax(available >= need[:, None], axis=1)
            found = open_slot & (available[np.arange(len(rows)), position] >= need)
            picks[rows[found], slot] = ranked[position[found]]


def recommend_for(
    model: Recommender, customer_ids: Sequence[str], count: int, method: Method = "blend"
) -> dict[str, list[dict[str, Any]]]:
    """What templates see as ``recommendations``: per customer id, ``count`` products as dicts
    with ``id``, ``name``, ``category`` and ``price``. Unknown customers get the shop's best
    sellers."""
    ids = [str(c) for c in customer_ids]
    rows = model.customers.get_indexer(pd.Index(ids)).astype(np.int64)
    picks = recommend(model, rows, count, method)
    catalogue = model.products
    records = [
        {
            "id": str(pid),
            "name": None if pd.isna(name) else str(name),
            "category": None if pd.isna(category) else str(category),
            "price": None if pd.isna(price) else float(price),
        }
        for pid, name, category, price in zip(
            catalogue.index,
            catalogue["name"],
            catalogue["category"],
            catalogue["price"],
            strict=True,
        )
    ]
    return {
        customer: [records[p] for p in row if p >= 0]
        for customer, row in zip(ids, picks.tolist(), strict=True)
    }
