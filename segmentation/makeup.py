"""What segments are made of, by the customer columns the model did not cluster on.

For each such column, customers are counted by segment and category (numbers with more than
:data:`MAX_CATEGORIES` distinct values are cut at the population's quartiles; text with more is
cut to its most common values and ``other``; missing values are a category of their own), with
each category's share of the segment, and a chi-square test of independence of segment and
column (``scipy.stats.chi2_contingency``) with Cramér's V as the strength of the association.
The test assumes expected counts of 5 or more in most cells; the share of cells below 5 is
reported beside it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

#: A column with more distinct values is binned (numbers) or cut to its most common ones (text).
MAX_CATEGORIES = 10
#: Text columns with more distinct values than this share of the customers are identifiers or
#: free text (names, e-mail addresses) and are skipped.
IDENTIFIER_SHARE = 0.5
MISSING = "(missing)"
OTHER = "other"


def segment_makeup(
    customers: pd.DataFrame,
    segments: pd.Series,
    skip: Collection[str] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The make-up of the segments by every column of ``customers`` not in ``skip``.

    :param customers: one row per customer (same index as ``segments``)
    :param segments: each customer's segment id
    :return: per column its table and test, and the columns left out with the reason
    """
    tables, skipped = [], []
    for column in customers.columns:
        name = str(column)
        if name in skip:
            continue
        categories, how = _categories(customers[column])
        if categories is None:
            skipped.append({"column": name, "reason": how})
            continue
        tables.append(_table(name, categories, how, segments))
    return tables, skipped


def _categories(values: pd.Series) -> tuple[pd.Series | None, str]:
    """The column as category labels, and how they were made (or why there are none)."""
    given = values.dropna()
    if given.empty:
        return None, "no values"
    if is_datetime64_any_dtype(values):
        return None, "a date (see tenure and recency)"
    distinct = given.nunique()
    if distinct < 2:
        return None, "one value only"
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        numbers = values.astype(np.float64)
        if distinct <= MAX_CATEGORIES:
            labels = numbers.map(_number_label, na_action="ignore")
            return labels.fillna(MISSING), "values"
        edges = np.unique(np.nanquantile(numbers.to_numpy(), [0, 0.25, 0.5, 0.75, 1]))
        if len(edges) < 3:
            return None, "almost one value"
        names = [
            f"{_number_label(low)} to {_number_label(high)}"
            for low, high in itertools.pairwise(edges)
        ]
        binned = pd.cut(numbers, list(edges), labels=names, include_lowest=True)
        labels = pd.Series(binned, index=values.index).astype(object)
        return labels.where(numbers.notna(), MISSING), "quartiles"
    text = values.astype(object).where(values.notna(), None)
    if distinct > IDENTIFIER_SHARE * len(values) and distinct > 50:
        return None, f"{distinct:,} distinct values (an identifier or free text)"
    if distinct <= MAX_CATEGORIES:
        return text.map(str, na_action="ignore").fillna(MISSING), "values"
    common = given.astype(str).value_counts().index[: MAX_CATEGORIES - 1]
    labels = text.map(str, na_action="ignore")
    labels = labels.where(labels.isin(common) | labels.isna(), OTHER)
    return labels.fillna(MISSING), f"the {MAX_CATEGORIES - 1} most common values and {OTHER}"


def _number_label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _table(column: str, categories: pd.Series, how: str, segments: pd.Series) -> dict[str, Any]:
    from scipy.stats import chi2_contingency

    counts = pd.crosstab(categories.rename("category"), segments.rename("segment"))
    order = _order(list(counts.index), how)
    counts = counts.reindex(order)
    sizes = counts.sum(axis=0)
    result: dict[str, Any] = {
        "column": column,
        "categories_from": how,
        "categories": [str(c) for c in counts.index],
        "counts": {
            str(segment): {str(c): int(n) for c, n in counts[segment].items()}
            for segment in counts.columns
        },
        "shares": {
            str(segment): {
                str(c): (float(n) / float(sizes[segment]) if sizes[segment] else 0.0)
                for c, n in counts[segment].items()
            }
            for segment in counts.columns
        },
        "chi2": None,
        "dof": None,
        "p_value": None,
        "cramers_v": None,
        "low_expected_share": None,
    }
    if counts.shape[0] >= 2 and counts.shape[1] >= 2:
        test = chi2_contingency(counts.to_numpy())
        n = float(counts.to_numpy().sum())
        smaller = min(counts.shape) - 1
        result.update(
            chi2=float(test.statistic),
            dof=int(test.dof),
            p_value=float(test.pvalue),
            cramers_v=math.sqrt(float(test.statistic) / (n * smaller)) if n and smaller else 0.0,
            low_expected_share=float((test.expected_freq < 5).mean()),
        )
    return result


def _order(labels: Sequence[Any], how: str) -> list[Any]:
    """Categories in a natural order: numbers and quartiles ascending, the rest by name, with
    ``other`` and missing last."""
    last = [label for label in (OTHER, MISSING) if label in labels]
    rest = [label for label in labels if label not in last]

    def key(label: Any) -> tuple[int, float, str]:
        head = str(label).split(" to ")[0].replace(",", "")
        try:
            return (0, float(head), "")
        except ValueError:
            return (1, 0.0, str(label))

    return sorted(rest, key=key) + last
