"""From a transaction log to what the lifetime-value models read, per customer.

A *purchase* is a day with at least one purchase line (an amount of 0 or more, not on a cancelled
``C…`` invoice, invoiced up to the time in question): several orders on one day count once, as
Fader, Hardie and Lee count the CDNOW data. For the continuous-time models, per customer:

``x``
    Repeat purchases: purchase days after the first.
``t_x``
    Time from the first purchase day to the last, in ``unit_days`` units (weeks by default).
``T``
    Time from the first purchase day to ``at``.
``zbar``
    Mean spend of the repeat purchase days (NaN without repeat purchases).

For the discrete-time model, time is cut into periods of ``period_days`` from each customer's
first purchase: ``x`` is the periods after the first with a purchase, ``t_x`` the last of them
and ``n`` the whole periods observed up to ``at``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

_NS_PER_DAY = 86_400 * 10**9


def purchase_days(transactions: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """One row per (customer, purchase day) up to ``at``: ``customer_id``, ``day`` (days since
    the epoch) and ``spend`` (the day's purchase lines' total)."""
    at_ns = pd.Timestamp(at).as_unit("ns").value
    invoiced = pd.to_datetime(transactions["invoiced_at"]).to_numpy(dtype="datetime64[ns]")
    ns = invoiced.view(np.int64)
    amount = transactions["quantity"].to_numpy(dtype=np.float64) * transactions[
        "unit_price"
    ].to_numpy(dtype=np.float64)
    cancelled = transactions["invoice"].astype(str).str.startswith("C").to_numpy(dtype=bool)
    keep = (ns <= at_ns) & ~np.isnat(invoiced) & (amount >= 0) & ~cancelled
    codes, ids = pd.factorize(transactions["customer_id"].to_numpy()[keep])
    day = ns[keep] // _NS_PER_DAY
    first_day = int(day.min()) if len(day) else 0
    span = int(day.max()) - first_day + 1 if len(day) else 1
    key = codes.astype(np.int64) * span + (day - first_day)
    unique, inverse = np.unique(key, return_inverse=True)
    spend = np.bincount(inverse.reshape(-1), weights=amount[keep], minlength=len(unique))
    return pd.DataFrame(
        {
            "customer_id": pd.Index(ids).take(unique // span),
            "day": unique % span + first_day,
            "spend": spend,
        }
    )


def rfm_summary(transactions: pd.DataFrame, at: datetime, unit_days: float = 7.0) -> pd.DataFrame:
    """``x``, ``t_x``, ``T``, ``zbar`` and ``first_day`` per customer with a purchase up to
    ``at`` (indexed by customer id, sorted)."""
    days = purchase_days(transactions, at)
    at_days = (pd.Timestamp(at).as_unit("ns").value) / _NS_PER_DAY
    grouped = days.groupby("customer_id", sort=True)
    first = grouped["day"].min()
    last = grouped["day"].max()
    count = grouped["day"].size()
    total = grouped["spend"].sum()
    first_spend = (
        days.loc[days["day"] == days["customer_id"].map(first), :]
        .groupby("customer_id", sort=True)["spend"]
        .sum()
    )
    x = (count - 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        zbar = np.where(x > 0, (total - first_spend) / x, np.nan)
    return pd.DataFrame(
        {
            "x": x,
            "t_x": (last - first).astype(np.float64) / unit_days,
            "T": (at_days - first.astype(np.float64)) / unit_days,
            "zbar": zbar,
            "first_day": first.astype(np.int64),
        },
        index=pd.Index(first.index, name="customer_id"),
    )


def holdout_purchases(
    transactions: pd.DataFrame, calibration_end: datetime, at: datetime, customers: pd.Index
) -> pd.Series:
    """Purchase days in (``calibration_end``, ``at``] of each of ``customers`` (0 for none)."""
    days = purchase_days(transactions, at)
    end_day = pd.Timestamp(calibration_end).as_unit("ns").value / _NS_PER_DAY
    later = days[days["day"] >= np.ceil(end_day + 1e-9)]
    counts: pd.Series = later.groupby("customer_id").size()
    result: pd.Series = counts.reindex(customers, fill_value=0).astype(np.float64)
    return result


def period_summary(transactions: pd.DataFrame, at: datetime, period_days: float) -> pd.DataFrame:
    """``x``, ``t_x``, ``n`` per customer in periods of ``period_days`` from the first purchase."""
    days = purchase_days(transactions, at)
    at_days = pd.Timestamp(at).as_unit("ns").value / _NS_PER_DAY
    first = days.groupby("customer_id")["day"].transform("min")
    period = np.floor((days["day"] - first) / period_days).astype(np.int64)
    marked = pd.DataFrame({"customer_id": days["customer_id"], "period": period})
    marked = marked[marked["period"] > 0].drop_duplicates()
    grouped = marked.groupby("customer_id", sort=True)["period"]
    first_day = days.groupby("customer_id", sort=True)["day"].min()
    n = np.floor((at_days - first_day.astype(np.float64)) / period_days)
    x = grouped.size().reindex(first_day.index, fill_value=0)
    t_x = grouped.max().reindex(first_day.index, fill_value=0)
    n = np.maximum(n, t_x)
    return pd.DataFrame(
        {"x": x.astype(np.float64), "t_x": t_x.astype(np.float64), "n": n.astype(np.float64)},
        index=pd.Index(first_day.index, name="customer_id"),
    )


def as_floats(values: pd.Series) -> npt.NDArray[np.float64]:
    """A column as a float array."""
    return values.to_numpy(dtype=np.float64)
