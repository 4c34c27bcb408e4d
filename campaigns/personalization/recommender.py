"""A fitted recommender: similarity matrices, popularity per segment, and top-k scoring for two
tasks.

A campaign recommends for one of two **purposes**:

- ``discover``: products new to the customer (never one they bought before). Methods score a
  customer's products as ``history @ similarity``: item-to-item collaborative filtering (``cf``,
  the cosine of buyers), ``ease`` (Steck's closed-form linear model, :mod:`.recommend_ease`),
  ``content`` (TF-IDF similarity of names and categories), ``blend`` (0.7 cf + 0.3 content);
  ``popular`` ranks the segment's best sellers the customer has not bought.
- ``replenish``: what the customer will buy next, repeats included. ``repeat`` scores the
  customer's own purchase lines, each weighted by a time decay (half-life
  ``half_life_days``), normalised to a best of 1, plus ``neighbour_weight`` times the products
  those lines point to through item-to-item CF (also normalised): in the spirit of TIFU-KNN (Hu
  et al. 2020), with item neighbours instead of customer neighbours so that scoring stays a
  sparse product at a million customers. ``rebuy`` (the customer's own most-bought products)
  and ``popular`` (best sellers, past purchases included) are its baselines.

New and thin customers, and anyone with fewer candidates than asked for, are filled from the
popular-in-segment list (under discover, skipping what they bought).
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
from campaigns.personalization.recommend_ease import ease_similarity

Method = Literal["cf", "ease", "content", "blend", "popular", "repeat", "rebuy"]
Purpose = Literal["discover", "replenish"]
#: The methods of each purpose; the first is its default.
METHODS: dict[str, tuple[str, ...]] = {
    "discover": ("cf", "ease", "content", "blend", "popular"),
    "replenish": ("repeat", "rebuy", "popular"),
}

#: Customers scored at once; a chunk's sparse scores stay around a few hundred MB at most.
_CHUNK = 20_000

_IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RecommenderSettings:
    """How a recommender is fitted.

    :param weighting: implicit feedback from the quantity bought, the spend, or 1 per product
    :param neighbours: similar products kept per product (CF, content, blend)
    :param recent_days: discover: products bought this recently are not recommended again (None:
        nothing ever bought is)
    :param min_items: discover: customers with fewer distinct products get the
        popular-in-segment list
    :param blend_weight: the share of collaborative filtering in ``blend`` (content has the rest)
    :param alpha: the asymmetric cosine's exponent (see :func:`.item_similarity`)
    :param ease_penalty: EASE's L2 penalty ``lambda``
    :param ease_neighbours: EASE weights kept per product
    :param half_life_days: replenish: a purchase line's weight halves every this many days (None:
        no decay, plain frequency)
    :param neighbour_weight: replenish: the weight of the neighbours' products against the
        customer's own (each normalised to a best of 1)
    :param repeat_neighbours: replenish: products kept per product in its neighbourhood (the
        conditional P(buys j | bought i), wider than CF's: on the retail log 50 beat 20)
    """

    weighting: Weighting = "binary"
    neighbours: int = 20
    recent_days: int | None = None
    min_items: int = 3
    blend_weight: float = 0.7
    alpha: float = 1.0
    ease_penalty: float = 200.0
    ease_neighbours: int = 50
    half_life_days: float | None = 180.0
    neighbour_weight: float = 0.2
    repeat_neighbours: int = 50


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
    """Fit the methods on the purchases before ``at`` (EASE, the slowest, on first use).

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
        settings.half_life_days,
    )
    matrix = interactions.matrix
    cf = item_similarity(matrix, settings.neighbours, settings.alpha)
    content = content_similarity(catalogue.reset_index(), settings.neighbours)
    w = settings.blend_weight
    # Pruned again: the sum has up to twice the neighbours, and scoring cost follows them.
    blend = top_neighbours((cf * w + content * (1.0 - w)).tocsr(), settings.neighbours)
    excluded = interactions.recent.tocsr()

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


def similarity(model: Recommender, method: str) -> sp.csr_matrix:
    """The product-to-product matrix of ``method`` (EASE and replenish's neighbourhood are
    fitted here on first use)."""
    settings = model.settings
    if method == "ease" and "ease" not in model.similarity:
        model.similarity["ease"] = ease_similarity(
            model.interactions.matrix, settings.ease_penalty, settings.ease_neighbours
        )
    if method == "repeat" and "repeat" not in model.similarity:
        model.similarity["repeat"] = item_similarity(
            model.interactions.matrix, settings.repeat_neighbours, 1.0
        )
    return model.similarity[method]


def _by_popularity(buyers: sp.csr_matrix, fallback: _IntArray | None = None) -> _IntArray:
    """Product positions by number of buyers, most first (ties by the fallback's order)."""
    counts = np.asarray(buyers.sum(axis=0)).ravel()
    if fallback is None:
        return np.argsort(-counts, kind="stable").astype(np.int64)
    order = np.argsort(-counts[fallback], kind="stable")
    return fallback[order]


def check_method(purpose: str, method: str) -> None:
    """Raise a clear error unless ``method`` is one of ``purpose``'s methods."""
    if purpose not in METHODS:
        raise PersonalizationError(
            f"unknown recommendation purpose {purpose!r}; expected discover or replenish"
        )
    if method not in METHODS[purpose]:
        raise PersonalizationError(
            f"unknown recommendation method {method!r} for purpose {purpose!r}; expected one of "
            f"{', '.join(METHODS[purpose])}"
        )


def recommend(
    model: Recommender,
    rows: _IntArray,
    count: int,
    method: Method = "blend",
    purpose: Purpose = "discover",
) -> _IntArray:
    """Top ``count`` product positions for customers at ``rows`` (-1: not in the model).

    :return: an array of shape (len(rows), count); -1 pads when the catalogue runs out
    """
    check_method(purpose, method)
    out = np.full((len(rows), count), -1, dtype=np.int64)
    if count <= 0 or len(rows) == 0:
        return out
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        out[start : start + _CHUNK] = _recommend_chunk(model, chunk, count, method, purpose)
    return out


def _rows(matrix: sp.csr_matrix, safe: _IntArray, known: npt.NDArray[np.bool_]) -> sp.csr_matrix:
    """``matrix``'s rows ``safe``, emptied where the customer is not in the model."""
    picked = matrix[safe]
    if not known.all():
        _zero_rows(picked, ~known)
    return picked


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its largest entry (rows of zeros stay zero)."""
    best = matrix.max(axis=1).toarray().ravel().astype(np.float64)
    scale = np.divide(1.0, best, out=np.zeros_like(best), where=best > 0)
    return (sp.diags(scale.astype(np.float32)) @ matrix).tocsr()


def _recommend_chunk(
    model: Recommender, rows: _IntArray, count: int, method: Method, purpose: Purpose
) -> _IntArray:
    n_products = len(model.products)
    known = rows >= 0
    safe = np.where(known, rows, 0)
    interactions = model.interactions
    if purpose == "replenish":
        # Nothing is excluded: what the customer bought before is what they may need again.
        excluded = sp.csr_matrix((len(rows), n_products), dtype=np.float32)
        if method == "popular":
            scores = None
        elif method == "rebuy":
            counts = _rows(interactions.counts, safe, known)
            # Ties (bought as often) go to the more recently bought: 1 / (1 + days since the
            # last purchase), in (0, 1], is added at a thousandth.
            recency = _rows(interactions.latest, safe, known)
            scores = (counts + recency.multiply(1e-3)).tocsr()
        else:
            own = _row_normalised(_rows(interactions.decayed, safe, known))
            theirs = _row_normalised((own @ similarity(model, "repeat")).tocsr())
            scores = (own + theirs.multiply(model.settings.neighbour_weight)).tocsr()
    else:
        excluded = _rows(model.excluded, safe, known)
        if method == "popular":
            scores = None
        else:
            history = _rows(interactions.matrix, safe, known)
            scores = (history @ similarity(model, method)).tocsr()
            thin = np.diff(history.indptr) < model.settings.min_items
            _zero_rows(scores, thin)
            # Drop excluded products: the mask has 1 where excluded, so keep score * (1 - mask).
            scores = (scores - scores.multiply(excluded)).tocsr()
    if scores is None:
        picks = np.full((len(rows), count), -1, dtype=np.int64)
    else:
        scores.data[scores.data < 0] = 0.0
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
    model: Recommender,
    customer_ids: Sequence[str],
    count: int,
    method: Method = "blend",
    purpose: Purpose = "discover",
) -> dict[str, list[dict[str, Any]]]:
    """What templates see as ``recommendations``: per customer id, ``count`` products as dicts
    with ``id``, ``name``, ``category`` and ``price``. Unknown customers get the shop's best
    sellers."""
    ids = [str(c) for c in customer_ids]
    rows = model.customers.get_indexer(pd.Index(ids)).astype(np.int64)
    picks = recommend(model, rows, count, method, purpose)
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
