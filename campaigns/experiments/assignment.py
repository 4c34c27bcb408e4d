"""Deterministic assignment: a stable hash of (salt, customer id) mapped onto the arms' shares.

SHA-256 of ``salt + "\\x1f" + customer_id``, its first 8 bytes read as an unsigned integer and
divided by 2**64, gives each customer a point ``u`` in [0, 1) that depends on nothing else: not
the run, the segmentation model, the audience or the order of rows. ``u`` below the holdout share
means holdout; the rest of [0, 1) is cut into the variants' weights in config order. So a customer
never changes arm while the salt and the weights stay the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from campaigns.experiments.spec import HOLDOUT, ExperimentSpec

_SCALE = float(2**64)


def unit_points(salt: str, customer_ids: Iterable[object]) -> npt.NDArray[np.float64]:
    """Each customer's point in [0, 1) for this salt."""
    prefix = salt.encode() + b"\x1f"
    return np.array(
        [
            int.from_bytes(hashlib.sha256(prefix + str(c).encode()).digest()[:8], "big") / _SCALE
            for c in customer_ids
        ],
        dtype=np.float64,
    )


def assign_variants(spec: ExperimentSpec, customer_ids: pd.Series | Iterable[object]) -> pd.Series:
    """The arm of each customer: a variant name or ``"holdout"``.

    The result has the index of ``customer_ids`` when it is a Series (so it aligns with the frame
    it came from), else a range index.
    """
    ids = customer_ids if isinstance(customer_ids, pd.Series) else pd.Series(list(customer_ids))
    u = unit_points(spec.salt, ids.tolist())
    names = np.array(spec.variants, dtype=object)
    weights = np.array([spec.shares[v] for v in spec.variants], dtype=np.float64)
    edges = np.cumsum(weights / weights.sum())
    rescaled = (u - spec.holdout) / (1 - spec.holdout)
    index = np.minimum(np.searchsorted(edges, rescaled, side="right"), len(names) - 1)
    arms = np.where(u < spec.holdout, HOLDOUT, names[index])
    return pd.Series(arms, index=ids.index, name="variant", dtype=object)
