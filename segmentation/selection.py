"""Choosing k: quality metrics, the elbow's knee, stability and held-out validation per k.

For every k in the range, on a fixed-seed sample of the preprocessed customers (all of them when
there are at most :data:`SEARCH_SAMPLE`):

- ``inertia``: within-cluster sum of squared distances to each cluster's mean (lower is tighter;
  always falls with k, so it is read for its elbow);
- ``silhouette``: mean silhouette, on a further fixed-seed sample of at most
  :data:`SILHOUETTE_SAMPLE` rows (it costs O(n²)); from -1 to 1, higher is better;
- ``calinski_harabasz``: between- over within-cluster dispersion, higher is better;
- ``davies_bouldin``: mean similarity of each cluster to its closest one, lower is better;
- ``stability``: mean adjusted Rand index between the clustering and ``refits`` refits on
  bootstrap resamples (each refit assigns the whole sample); 1 means the same partition every time;
- ``holdout``: fit on a random 70 % of the sample, assign the other 30 %, and compare (adjusted
  Rand index) with a model fitted on that 30 % alone, as in Lange et al.'s prediction strength.

The knee of the inertia curve is located by the Kneedle rule: after scaling k and inertia to
[0, 1], the k farthest below the straight line from the first to the last point.

**The rule that picks k**: among the k whose stability is at least :data:`STABLE_ARI`, the one
with the highest silhouette; when no k is that stable, the one with the highest silhouette
overall. Silhouette rewards compact, well separated segments without always preferring more of
them, and the stability floor rejects a k whose "best" partition is an accident of the seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from segmentation.models.base import Clusterer

#: Rows the k search fits on at most (a fixed-seed sample above that).
SEARCH_SAMPLE = 20_000
#: Rows the silhouette is computed on at most.
SILHOUETTE_SAMPLE = 5_000
#: Mean bootstrap adjusted Rand index at or above which a k counts as stable.
STABLE_ARI = 0.8
#: Share of the sample the held-out check fits on.
HOLDOUT_TRAIN = 0.7


@dataclass(frozen=True)
class KScore:
    """The quality of one k; NaN where a metric is undefined (one cluster found, too few rows)."""

    k: int
    inertia: float
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    stability: float
    stability_std: float
    holdout: float


@dataclass(frozen=True)
class KSearch:
    """Every k's scores, the knee of the inertia curve, the chosen k and why."""

    scores: list[KScore]
    knee: int | None
    chosen: int
    reason: str
    sample_size: int


MakeModel = Callable[[int, int], Clusterer]


def score_k(
    space: npt.NDArray[np.float64],
    k: int,
    make: MakeModel,
    seed: int,
    refits: int,
    labels: npt.NDArray[np.int64] | None = None,
) -> KScore:
    """The scores of ``k`` on ``space``; ``make(k, seed)`` builds an unfitted clusterer.

    ``labels`` are the clustering to score (by default a fit of ``make(k, seed)`` on ``space``).
    """
    n = len(space)
    if labels is None:
        labels = make(k, seed).fit(space).predict(space)
    found = len(np.unique(labels))
    inertia = _inertia(space, labels)
    if 2 <= found < n:
        sample = min(n, SILHOUETTE_SAMPLE)
        silhouette = float(
            silhouette_score(
                space, labels, sample_size=sample if sample < n else None, random_state=seed
            )
        )
        ch = float(calinski_harabasz_score(space, labels))
        db = float(davies_bouldin_score(space, labels))
    else:
        silhouette = ch = db = float("nan")
    rng = np.random.default_rng(seed)
    aris = []
    for refit in range(refits):
        rows = rng.integers(0, n, n)
        model = make(k, seed + refit + 1).fit(space[rows])
        aris.append(adjusted_rand_score(labels, model.predict(space)))
    holdout = float("nan")
    if n >= 10 * k:
        order = rng.permutation(n)
        cut = int(n * HOLDOUT_TRAIN)
        train, test = space[order[:cut]], space[order[cut:]]
        assigned = make(k, seed).fit(train).predict(test)
        own = make(k, seed).fit(test).predict(test)
        holdout = float(adjusted_rand_score(own, assigned))
    return KScore(
        k=k,
        inertia=inertia,
        silhouette=silhouette,
        calinski_harabasz=ch,
        davies_bouldin=db,
        stability=float(np.mean(aris)) if aris else float("nan"),
        stability_std=float(np.std(aris)) if aris else float("nan"),
        holdout=holdout,
    )


def search_k(
    space: npt.NDArray[np.float64],
    k_values: Sequence[int],
    make: MakeModel,
    seed: int,
    refits: int = 5,
    sample_size: int = SEARCH_SAMPLE,
) -> KSearch:
    """Score every k in ``k_values`` on (a sample of) ``space`` and choose one by the rule."""
    space = sample_rows(space, sample_size, seed)
    scores = [score_k(space, k, make, seed, refits) for k in k_values]
    knee = knee_point([s.k for s in scores], [s.inertia for s in scores])
    chosen, reason = choose_k(scores, knee)
    return KSearch(scores, knee, chosen, reason, len(space))


def sample_rows(space: npt.NDArray[np.float64], size: int, seed: int) -> npt.NDArray[np.float64]:
    """At most ``size`` rows of ``space``: all of them, or a fixed-seed sample in row order."""
    if len(space) <= size:
        return space
    rows = np.sort(np.random.default_rng(seed).choice(len(space), size, replace=False))
    return space[rows]


def choose_k(scores: Sequence[KScore], knee: int | None) -> tuple[int, str]:
    """The k chosen by the rule in the module docstring, and a sentence saying why."""
    if len(scores) == 1:
        return scores[0].k, f"k = {scores[0].k} is set in the configuration"
    usable = [s for s in scores if not np.isnan(s.silhouette)] or list(scores)
    stable = [s for s in usable if s.stability >= STABLE_ARI]
    pool = stable or usable
    best = max(pool, key=lambda s: (_or(s.silhouette, -2.0), -s.k))
    elbow = f"; the elbow of the inertia curve is at k = {knee}" if knee is not None else ""
    if stable:
        ks = ", ".join(str(s.k) for s in stable)
        return best.k, (
            f"k = {best.k} has the highest silhouette ({best.silhouette:.3f}) among the k whose "
            f"bootstrap stability (adjusted Rand index) is at least {STABLE_ARI} ({ks}){elbow}"
        )
    return best.k, (
        f"k = {best.k} has the highest silhouette ({best.silhouette:.3f}); no k reached a "
        f"bootstrap stability of {STABLE_ARI}, so treat these segments with care{elbow}"
    )


def knee_point(ks: Sequence[int], inertia: Sequence[float]) -> int | None:
    """The knee of a decreasing, convex curve by the Kneedle rule (None for under 3 points)."""
    if len(ks) < 3:
        return None
    x = np.asarray(ks, dtype=np.float64)
    y = np.asarray(inertia, dtype=np.float64)
    if np.ptp(y) == 0 or not np.all(np.isfinite(y)):
        return None
    x = (x - x.min()) / np.ptp(x)
    y = (y - y.min()) / np.ptp(y)
    # For a decreasing curve the line runs from (0, 1) to (1, 0): y = 1 - x. The knee lies
    # farthest below it.
    gap = (1.0 - x) - y
    return int(ks[int(np.argmax(gap))])


def _inertia(space: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]) -> float:
    total = 0.0
    for label in np.unique(labels):
        members = space[labels == label]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def _or(value: float, default: float) -> float:
    return default if np.isnan(value) else value
