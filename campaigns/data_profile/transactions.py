"""What a transaction log holds beyond its columns: time range, orders per customer, revenue by
month and returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Quarantine reasons that are returns or cancellations (set aside when loading files).
RETURN_REASONS = ("cancelled_invoice", "non_positive_quantity")


def profile_transactions(
    transactions: pd.DataFrame,
    quarantined: dict[str, int] | None = None,
    factorised: dict[str, tuple[Any, Any]] | None = None,
) -> dict[str, Any] | None:
    """Time range, invoices, orders per customer, revenue by month and the share of returns.

    An *order* is a distinct invoice of a customer; a *return line* has a negative amount or
    belongs to a cancelled (``C…``) invoice. Returns the load set aside are counted from
    ``quarantined`` against all the lines the source had (loaded plus quarantined).
    ``factorised`` holds the ``invoice`` and ``customer_id`` columns' factorisation when the
    table's profile has already made it.
    """
    factorised = factorised or {}
    if transactions.empty:
        return None
    invoiced = pd.to_datetime(transactions["invoiced_at"]).to_numpy(dtype="datetime64[ns]")
    amount = transactions["quantity"].to_numpy(dtype=np.float64) * transactions[
        "unit_price"
    ].to_numpy(dtype=np.float64)
    invoice_codes, invoices = factorised.get("invoice") or pd.factorize(transactions["invoice"])
    cancelled = _starts_with_c(invoices)
    returns = (amount < 0) | np.where(invoice_codes >= 0, cancelled[invoice_codes], False)
    customer_codes, customers = factorised.get("customer_id") or pd.factorize(
        transactions["customer_id"]
    )
    orders = _orders(customer_codes, invoice_codes, len(customers), len(invoices))
    months = invoiced.astype("datetime64[M]").astype(np.int64)
    first_month = int(months.min())
    month_index = months - first_month
    span = int(month_index.max()) + 1
    revenue = np.bincount(month_index, weights=amount, minlength=span)
    lines = np.bincount(month_index, minlength=span)
    month_keys = (np.arange(span) + first_month).astype("datetime64[M]")
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


def _starts_with_c(invoices: object) -> np.ndarray:
    """Which distinct invoice numbers start with ``C`` (cancellations)."""
    values = pd.Series(invoices)
    if not pd.api.types.is_string_dtype(values) or values.dtype == object:
        values = values.astype(str)
    return values.str.startswith("C").fillna(False).to_numpy(dtype=bool)


def _orders(customer: np.ndarray, invoice: np.ndarray, customers: int, invoices: int) -> np.ndarray:
    """Distinct invoices per customer (an invoice shared by customers counts for each)."""
    valid = invoice >= 0
    owner = np.full(invoices, -1, dtype=np.int64)
    owner[invoice[valid]] = customer[valid]
    # Normally each invoice is one customer's: then counting invoices per owner suffices.
    if np.array_equal(owner[invoice[valid]], customer[valid]):
        return np.bincount(owner[owner >= 0], minlength=customers)
    pairs = pd.unique(customer.astype(np.int64) * (invoices + 1) + invoice + 1)
    return np.bincount(pairs // (invoices + 1), minlength=customers)


def _order_histogram(orders: np.ndarray) -> dict[str, int]:
    """Customers by number of orders: 1 to 9, and 10 or more."""
    capped = np.minimum(orders, 10)
    counts = np.bincount(capped, minlength=11)
    return {("10+" if i == 10 else str(i)): int(counts[i]) for i in range(1, 11)}
