"""Features from customer tables: numeric trait columns, derived traits and categorical columns.

Customer tables such as the Wholesale layout (annual spend per category) or the Customer
Personality layout (income, children, spend and purchases per channel) carry their features as
columns. :func:`trait_features` picks the named ones and derives:

``age``
    The year of ``at`` minus a year-of-birth column.
``children``
    The sum of the named columns (e.g. ``Kidhome`` and ``Teenhome``).
``total_spend``
    The sum of the named columns (e.g. the ``Mnt*`` columns, or the six Wholesale categories).

Numeric columns are converted with ``pandas.to_numeric``; a value that is not a number becomes
missing (and is then imputed or dropped by the preprocessing, and counted). Categorical columns
are kept as text for the preprocessing to encode. Tenure (days since signup) comes with the
transaction features of :func:`segmentation.rfm_features`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

#: The derived traits :func:`trait_features` knows.
DERIVED: tuple[str, ...] = ("age", "children", "total_spend")


def trait_features(
    customers: pd.DataFrame,
    numeric: Sequence[str] = (),
    derived: Mapping[str, str | Sequence[str]] | None = None,
    categorical: Sequence[str] = (),
    at: datetime | None = None,
) -> pd.DataFrame:
    """The named customer columns as features, indexed by ``customer_id``.

    Parameters
    ----------
    customers:
        Customers with ``customer_id`` and the named columns.
    numeric:
        Columns to use as numbers.
    derived:
        ``{"age": birth year column, "children": [columns], "total_spend": [columns]}``; any
        subset.
    categorical:
        Columns to keep as text.
    at:
        The moment the features describe (for ``age``; default: now).

    Raises
    ------
    KeyError
        When a named column is missing, naming it and the columns there are.
    """
    derived = dict(derived or {})
    wanted = list(numeric) + list(categorical)
    for name, source in derived.items():
        if name not in DERIVED:
            raise KeyError(f"unknown derived trait {name!r}; known: {', '.join(DERIVED)}")
        wanted += [source] if isinstance(source, str) else list(source)
    missing = [c for c in dict.fromkeys(wanted) if c not in customers.columns]
    if missing:
        present = ", ".join(repr(c) for c in customers.columns)
        raise KeyError(f"customers have no column(s) {missing}; their columns are: {present}")
    index = pd.Index(customers["customer_id"], name="customer_id")
    out = pd.DataFrame(index=index)
    for column in numeric:
        out[column] = _numbers(customers[column])
    for name, source in derived.items():
        if name == "age":
            assert isinstance(source, str)
            year = (at or datetime.now()).year
            out["age"] = year - _numbers(customers[source])
        else:
            columns = [source] if isinstance(source, str) else list(source)
            out[name] = sum(
                (_numbers(customers[c]) for c in columns), start=np.zeros(len(customers))
            )
    for column in categorical:
        values = customers[column].to_numpy(dtype=object)
        out[column] = (
            pd.Series(values, index=index, dtype=object)
            .where(pd.notna(values), np.nan)
            .map(lambda v: v if isinstance(v, float) else str(v))
        )
    return out


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
