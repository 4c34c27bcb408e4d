"""What a transaction log holds beyond its columns: time range, orders per customer, revenue by
month and returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Quarantine reasons that are returns or cancellations (set aside when loading files).
RETURN_REASONS = ("cancelled_invoice", "non_positive_quantity")


def profile_transactions(
    transactions: pd.DataFrame, quarantined: dict[str, int] | None = None
) -> dict[str, Any] | None:
    """Time range, invoices, orders per customer, revenue by month and the share of returns.

    An *order* is a distinct invoice of a customer; a *return line* has a negative amount or
    belongs to a cancelled (``C…``) invoice. Returns the load set aside are counted from
    ``quarantined`` against all the lines the source had (loaded plus quarantined).
    """
    if transactions.empty:
        return None
    invoiced = pd.to_datetime(transactions["invoiced_at"]).to_numpy(dtype="datetime64[ns]")
    amount = transactions["quantity"].to_numpy(dtype=np.float64) * transactions[
        "unit_price"
    ].to_numpy(dtype=np.float64)
    invoice_codes, invoices = pd.factorize(transactions["invoice"])
    cancelled = np.asarray(pd.Index(invoices).astype(str).str.startswith("C"), dtype=bool)
    returns = (amount < 0) | np.where(invoice_codes >= 0, cancelled[invoice_codes], False)
    customer_codes, customers = pd.factorize(transactions["customer_id"])
    pairs = pd.unique(customer_codes.astype(np.int64) * (len(invoices) + 1) + invoice_codes + 1)
    orders = np.bincount(pairs // (len(invoices) + 1), minlength=len(customers))
    months = invoiced.astype("datetime64[M]")
    month_keys, month_index = np.unique(months, return_inverse=True)
    revenue = np.bincount(month_index, weights=amount, minlength=len(month_keys))
    lines = np.bincount(month_index, minlength=len(month_keys))
    quarantined = quarantined or {}
    set_aside = sum(quarantined.get(r, 0) for r in RETURN_REASONS)
    source_lines = len(transactions) + sum(quarantined.values())
    return {
        "first": pd.Timestamp(invoiced.min()).isoformat(),
        "last": pd.Timestamp(invoiced.max()).isoformat(),
        "lines": len(transactions),
        "invoices": len(invoices),
        "customers": len(customers),
        "revenue": float(amount.sum()),
        "orders_per_customer": {
            "mean": float(orders.mean()),
            "median": float(np.median(orders)),
            "p90": float(np.quantile(orders, 0.9)),
            "max": int(orders.max()),
            "one_order_share": float((orders == 1).mean()),
            "histogram": _order_histogram(orders),
        },
        "revenue_by_month": [
            {
                "month": str(month)[:7],
                "revenue": float(r),
                "lines": int(n),
            }
            for month, r, n in zip(month_keys, revenue, lines, strict=True)
        ],
        "returns": {
            "lines": int(returns.sum()),
            "share": float(returns.mean()),
            "quarantined": set_aside,
            "quarantined_share": set_aside / source_lines if source_lines else 0.0,
        },
    }


def _order_histogram(orders: np.ndarray) -> dict[str, int]:
    """Customers by number of orders: 1 to 9, and 10 or more."""
    capped = np.minimum(orders, 10)
    counts = np.bincount(capped, minlength=11)
    return {("10+" if i == 10 else str(i)): int(counts[i]) for i in range(1, 11)}
