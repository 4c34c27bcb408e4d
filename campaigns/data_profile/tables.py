"""The profile of a table: per column its type, missing values, distinct values and, for numbers,
the distribution (quartiles, mean, standard deviation, skew, Tukey outliers and a histogram);
exact duplicate rows; and the correlations between numeric columns.

Every figure is the plain pandas one (``isna().sum()``, ``nunique()``, ``duplicated().sum()``,
``quantile``, ``skew``, ``corr``), computed so that ten million lines take seconds: each column
is factorised once, and the distinct values, missing values and duplicate rows are read off the
integer codes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
)

#: Bins of each numeric column's histogram.
HISTOGRAM_BINS = 20
#: Most common values listed for a text column.
TOP_VALUES = 5
#: Tukey's fences: values beyond this many interquartile ranges outside the quartiles.
TUKEY = 1.5


def column_type(values: pd.Series) -> str:
    """``number``, ``boolean``, ``datetime`` or ``text``."""
    if is_bool_dtype(values):
        return "boolean"
    if is_datetime64_any_dtype(values):
        return "datetime"
    if is_numeric_dtype(values):
        return "number"
    return "text"


def profile_table(
    frame: pd.DataFrame, factorised: dict[str, tuple[Any, Any]] | None = None
) -> dict[str, Any]:
    """The profile of ``frame`` as JSON-ready data (see the module docstring).

    :param factorised: when given, receives each column's ``pd.factorize`` codes and uniques
        (the transaction log's figures reuse them)
    """
    codes = []
    columns = []
    for name in frame.columns:
        values = frame[name]
        kind = column_type(values)
        code, uniques = pd.factorize(values, use_na_sentinel=True)
        codes.append(code)
        if factorised is not None:
            factorised[str(name)] = (code, uniques)
        missing = int((code == -1).sum())
        column: dict[str, Any] = {
            "name": str(name),
            "type": kind,
            "missing": missing,
            "missing_share": missing / len(frame) if len(frame) else 0.0,
            "distinct": len(uniques),
        }
        if kind == "number":
            column.update(_numbers(values.to_numpy(dtype=np.float64, na_value=np.nan)))
        elif kind == "datetime":
            given = values.dropna()
            column.update(
                min=given.min().isoformat() if len(given) else None,
                max=given.max().isoformat() if len(given) else None,
            )
        elif kind == "text":
            counts = np.bincount(code[code >= 0], minlength=len(uniques))
            top = np.argsort(-counts, kind="stable")[:TOP_VALUES]
            column["top"] = [{"value": str(uniques[i]), "count": int(counts[i])} for i in top]
        columns.append(column)
    numeric = [c["name"] for c in columns if c["type"] == "number"]
    return {
        "rows": len(frame),
        "columns": len(frame.columns),
        "duplicate_rows": duplicate_rows(codes, len(frame)),
        "column_profiles": columns,
        "correlations": _correlations(frame, numeric),
    }


def duplicate_rows(codes: list[npt.NDArray[np.int64]], rows: int) -> int:
    """Rows equal to an earlier row in every column (``DataFrame.duplicated().sum()``), from the
    columns' factorised codes (missing values, code -1, are equal to each other, as in pandas).

    The codes are folded into one integer key per row, column by column; when the next column
    would overflow the key, the key is first renumbered densely (at most ``rows`` values).
    """
    if not codes or rows == 0:
        return 0
    key = codes[0].astype(np.int64) + 1
    width = int(key.max()) + 1
    for code in codes[1:]:
        size = int(code.max()) + 2
        if width * size >= 2**62:
            key, uniques = pd.factorize(key)
            width = len(uniques)
        key = key * size + (code.astype(np.int64) + 1)
        width *= size
    return int(rows - len(pd.unique(key)))


def _numbers(values: npt.NDArray[np.float64]) -> dict[str, Any]:
    given = values[~np.isnan(values)]
    if len(given) == 0:
        return {"mean": None, "std": None, "skew": None, "outliers": 0, "histogram": None}
    q1, median, q3 = np.quantile(given, [0.25, 0.5, 0.75])
    spread = q3 - q1
    low, high = q1 - TUKEY * spread, q3 + TUKEY * spread
    counts, edges = np.histogram(given, bins=HISTOGRAM_BINS)
    return {
        "mean": float(given.mean()),
        "std": float(given.std(ddof=1)) if len(given) > 1 else None,
        "min": float(given.min()),
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "max": float(given.max()),
        "skew": _skew(given),
        "outliers": int(((given < low) | (given > high)).sum()),
        "outlier_fences": [float(low), float(high)],
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _skew(values: npt.NDArray[np.float64]) -> float | None:
    """The adjusted Fisher-Pearson skewness, as ``pandas.Series.skew``."""
    skew: Any = pd.Series(values).skew()
    value = float(skew)
    return None if np.isnan(value) else value


def _correlations(frame: pd.DataFrame, numeric: list[str]) -> dict[str, Any] | None:
    usable = [c for c in numeric if frame[c].nunique(dropna=True) > 1]
    if len(usable) < 2:
        return None
    matrix = frame[usable].astype(np.float64).corr()
    return {"columns": usable, "pearson": matrix.to_numpy().tolist()}
