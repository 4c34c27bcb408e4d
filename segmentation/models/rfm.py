"""Rule-based RFM scoring: quintile scores and the classic named RFM segments.

Each customer gets three scores from 1 to 5 by quintile of the training customers: ``R`` (5 =
bought most recently), ``F`` (5 = most orders) and ``M`` (5 = highest spend). ``F`` and ``M`` are
combined into ``FM``, their mean rounded half up, and the pair (R, FM) falls in exactly one cell
of this grid, which names the segment:

======  ===================  ===================  =========================
R       FM 1                 FM 2-3               FM 4-5
======  ===================  ===================  =========================
5       New Customers        Potential Loyalists  Champions
4       Promising            Potential Loyalists  Loyal
3       About to Sleep       About to Sleep (2),  Loyal
                             Need Attention (3)
1-2     Hibernating          Hibernating (2),     At Risk (4),
                             At Risk (3)          Can't Lose Them (5)
======  ===================  ===================  =========================

Ties are common (most customers of a shop buy once), so a quintile edge can repeat. A value
equal to an edge gets the *lower* score band for ``F`` and ``M`` (one-off buyers score 1, not the
score of the quintile the tie happens to end in) and, symmetrically, the higher ``R`` score.
The segment ids are fixed by the order of :data:`RFM_SEGMENTS` (1 = Champions), so they never
change between refits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

#: The named segments, best first; a segment's id is its position here plus one.
RFM_SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "Can't Lose Them",
    "At Risk",
    "Hibernating",
)

_QUINTILES = [0.2, 0.4, 0.6, 0.8]


def _cell(r: int, fm: int) -> str:
    if r == 5:
        return "New Customers" if fm == 1 else "Potential Loyalists" if fm <= 3 else "Champions"
    if r == 4:
        return "Promising" if fm == 1 else "Potential Loyalists" if fm <= 3 else "Loyal"
    if r == 3:
        return "About to Sleep" if fm <= 2 else "Need Attention" if fm == 3 else "Loyal"
    return "Hibernating" if fm <= 2 else "At Risk" if fm <= 4 else "Can't Lose Them"


#: Cluster index (0-based position in :data:`RFM_SEGMENTS`) by (R - 1, FM - 1).
_GRID = np.array(
    [[RFM_SEGMENTS.index(_cell(r, fm)) for fm in range(1, 6)] for r in range(1, 6)],
    dtype=np.int64,
)


class RFMRules(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """Quintile RFM scores and named segments (see the module docstring).

    ``X`` is a DataFrame with ``recency``, ``frequency`` and ``monetary`` columns. ``predict``
    returns the index of each customer's segment in :data:`RFM_SEGMENTS`.

    Attributes
    ----------
    edges_:
        The quintile edges (four values) of each of the three columns, by column name.
    n_clusters:
        Always ``len(RFM_SEGMENTS)``.
    """

    n_clusters = len(RFM_SEGMENTS)

    def fit(self, X: pd.DataFrame, y: None = None) -> RFMRules:
        frame = _rfm(X)
        self.edges_ = {
            column: np.quantile(frame[column].to_numpy(dtype=np.float64), _QUINTILES)
            for column in ("recency", "frequency", "monetary")
        }
        self.labels_ = self.predict(X)
        return self

    def scores(self, X: pd.DataFrame) -> pd.DataFrame:
        """The ``R``, ``F``, ``M`` and ``FM`` scores (1 to 5) of each row."""
        check_is_fitted(self)
        frame = _rfm(X)
        # Recency: fewer days is better; a tie with an edge takes the better (higher) score.
        r = 5 - np.searchsorted(self.edges_["recency"], frame["recency"].to_numpy(), side="left")
        f = 1 + np.searchsorted(
            self.edges_["frequency"], frame["frequency"].to_numpy(), side="left"
        )
        m = 1 + np.searchsorted(self.edges_["monetary"], frame["monetary"].to_numpy(), side="left")
        fm = (f + m + 1) // 2
        return pd.DataFrame({"R": r, "F": f, "M": m, "FM": fm}, index=frame.index).astype(np.int64)

    def predict(self, X: pd.DataFrame) -> npt.NDArray[np.int64]:
        scores = self.scores(X)
        result: npt.NDArray[np.int64] = _GRID[
            scores["R"].to_numpy() - 1, scores["FM"].to_numpy() - 1
        ]
        return result


def _rfm(X: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ValueError("the rfm model needs a DataFrame with recency, frequency and monetary")
    missing = [c for c in ("recency", "frequency", "monetary") if c not in X.columns]
    if missing:
        raise ValueError(f"the rfm model scores recency, frequency and monetary; X lacks {missing}")
    return X[["recency", "frequency", "monetary"]].astype(np.float64).fillna(0.0)
