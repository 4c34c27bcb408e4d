"""Customer features built from the transaction log: recency, frequency, monetary value, tenure.

The inputs are the plain tables of :mod:`store.frames`; the output is one row of floats per
customer, ready for :class:`segmentation.Segmenter`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

#: The columns of :func:`rfm_features`, in order.
RFM_COLUMNS: tuple[str, ...] = (
    "recency",
    "frequency",
    "monetary",
    "tenure",
    "average_order_value",
)

_NS_PER_DAY = 86_400 * 10**9


def rfm_features(transactions: pd.DataFrame, customers: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """Recency, frequency, monetary value, tenure and average order value per customer at ``at``.

    Parameters
    ----------
    transactions:
        Transaction lines with the columns of :data:`store.frames.TRANSACTION_COLUMNS`.
        Only ``invoice``, ``customer_id``, ``quantity``, ``unit_price`` and ``invoiced_at`` are
        read. Lines invoiced after ``at`` are ignored (a run's ``--at`` may lie in the past),
        and so are lines whose customer is not in ``customers``.
    customers:
        Customers with (at least) ``customer_id``, unique, and ``signup_at``.
    at:
        The moment the features describe. A timezone-aware value is converted to UTC; a naive one
        is taken as UTC, like every timestamp in the store.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (every customer, in the order of ``customers``), with the float
        columns of :data:`RFM_COLUMNS`:

        ``recency``
            Days (fractional) from the last purchase to ``at``.
        ``frequency``
            Distinct purchase invoices; several lines of one invoice count once.
        ``monetary``
            Net spend: the sum of ``quantity * unit_price`` over all lines, so returns reduce it.
        ``tenure``
            Days from the first purchase, or from signup when that is earlier, to ``at``.

        **Returns and cancellations.** A line with a negative amount (a return, as in the Online
        Retail log) and every line of an invoice whose number starts with ``C`` (a cancellation)
        is a *return line*: it lowers ``monetary`` by its (negative or, for a cancelled line
        written with a positive quantity, positive) amount taken as a refund, but it is not an
        order: it neither counts in ``frequency`` nor refreshes ``recency`` or starts ``tenure``.
        (The file source quarantines such lines by default; a store filled otherwise, or a
        pipeline of your own, may hold them.)
        ``average_order_value``
            ``monetary / frequency``, and 0 for customers without orders.

        A customer without any purchase up to ``at`` has frequency, monetary value and average
        order value 0, and recency equal to tenure, the days since signup: such a customer has been
        inactive since joining, so a sign-up long ago reads as lapsed and a fresh one as recent,
        and recency never exceeds tenure. Customers who sign up after ``at`` have tenure and
        recency 0 (clipped), and so do customers with neither purchases nor a signup time.
    """
    at_ns = int(_as_utc_naive(at).as_unit("ns").value)
    ids = pd.Index(customers["customer_id"])
    if not ids.is_unique:
        duplicated = ids[ids.duplicated()].unique()[:5].tolist()
        raise ValueError(f"customers.customer_id must be unique; repeated: {duplicated}")
    n = len(ids)

    # Factorise the whole columns first and filter the integer codes afterwards: hashing the
    # (often Arrow-backed) string column once is far cheaper than copying it through a mask or
    # looking every line up in the customer index.
    line_codes, line_ids = transactions["customer_id"].factorize()
    customer_of_id = ids.get_indexer(line_ids)
    customer = np.where(line_codes >= 0, customer_of_id[line_codes], -1)

    invoiced_ns = _nanoseconds(transactions["invoiced_at"])
    keep = (customer >= 0) & (invoiced_ns != _NAT) & (invoiced_ns <= at_ns)
    customer = customer[keep]
    invoiced_ns = invoiced_ns[keep]
    amount = (
        transactions["quantity"].to_numpy(dtype=np.float64)[keep]
        * transactions["unit_price"].to_numpy(dtype=np.float64)[keep]
    )
    invoice_codes, invoice_ids = transactions["invoice"].factorize()
    cancelled_invoice = np.append(
        np.asarray(pd.Index(invoice_ids).astype(str).str.startswith("C"), dtype=bool), False
    )
    # Lines without an invoice number share one "unknown" invoice per customer.
    n_invoices = len(invoice_ids) + 1
    invoice_codes = np.where(invoice_codes >= 0, invoice_codes, len(invoice_ids))[keep]
    cancelled = cancelled_invoice[invoice_codes]
    # A cancelled line is a refund whatever the sign it was written with.
    amount = np.where(cancelled, -np.abs(amount), amount)
    purchase = (amount >= 0) & ~cancelled

    monetary = np.bincount(customer, weights=amount, minlength=n)
    frequency = _distinct_invoices(customer[purchase], invoice_codes[purchase], n, n_invoices)

    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, customer[purchase], invoiced_ns[purchase])
    np.maximum.at(last, customer[purchase], invoiced_ns[purchase])
    return _rfm_table(ids, frequency, monetary, first, last, customers, at_ns)


_NAT = np.iinfo(np.int64).min


def rfm_from_aggregates(
    aggregates: pd.DataFrame, customers: pd.DataFrame, at: datetime
) -> pd.DataFrame:
    """:func:`rfm_features` from per-customer aggregates instead of the lines.

    ``aggregates`` has a row per customer with purchases or returns (others may have one with
    0 orders and missing times): ``customer_id``, ``orders`` (distinct purchase invoices),
    ``monetary`` (net spend), ``first_order_at`` and ``last_order_at`` (the first and last
    purchase), as :func:`store.features.feature_rows` reads them; every line they summarise
    must be dated at or before ``at``. The result is the same table as :func:`rfm_features`
    over those lines; recency and tenure are computed here, at ``at``. Rows in the customers'
    order are taken as they are; others are looked up by id.
    """
    at_ns = int(_as_utc_naive(at).as_unit("ns").value)
    ids = pd.Index(customers["customer_id"])
    n = len(ids)
    line_ids = aggregates["customer_id"]
    if len(line_ids) == n and np.array_equal(
        line_ids.to_numpy(dtype=object), ids.to_numpy(dtype=object)
    ):
        rows = np.arange(n)  # one row per customer, in the customers' order: no lookup
    else:
        if not ids.is_unique:
            duplicated = ids[ids.duplicated()].unique()[:5].tolist()
            raise ValueError(f"customers.customer_id must be unique; repeated: {duplicated}")
        rows = ids.get_indexer(line_ids)
    known = rows >= 0
    rows = rows[known]
    frequency = np.zeros(n)
    monetary = np.zeros(n)
    first = np.full(n, _NAT, dtype=np.int64)
    last = np.full(n, _NAT, dtype=np.int64)
    frequency[rows] = aggregates["orders"].to_numpy(dtype=np.float64)[known]
    monetary[rows] = aggregates["monetary"].to_numpy(dtype=np.float64)[known]
    first[rows] = _nanoseconds(aggregates["first_order_at"])[known]
    last[rows] = _nanoseconds(aggregates["last_order_at"])[known]
    return _rfm_table(ids, frequency, monetary, first, last, customers, at_ns)


def _distinct_invoices(
    customer: npt.NDArray[np.int64], invoice: npt.NDArray[np.int64], n: int, n_invoices: int
) -> npt.NDArray[np.float64]:
    """Distinct invoices per customer, counting (customer, invoice) pairs so that an invoice
    number shared by several customers counts once for each of them."""
    # An invoice is normally one customer's: then one pass that records each invoice's customer
    # suffices (a tenth of the time of hashing ten million pairs).
    owner = np.full(n_invoices, -1, dtype=np.int64)
    owner[invoice] = customer
    if np.array_equal(owner[invoice], customer):
        used = owner[owner >= 0]
        return np.bincount(used, minlength=n).astype(np.float64)
    pairs = pd.unique(customer.astype(np.int64) * n_invoices + invoice)
    return np.bincount(pairs // n_invoices, minlength=n).astype(np.float64)


def _as_utc_naive(at: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(at)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(UTC).tz_localize(None)
    return stamp


def _nanoseconds(values: pd.Series) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch (NaT as the minimum int64) of a tz-naive UTC datetime column."""
    stamps = pd.to_datetime(values)
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert(UTC).dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)


def category_shares(
    transactions: pd.DataFrame, customers: pd.DataFrame, products: pd.DataFrame, at: datetime
) -> pd.DataFrame:
    """Each customer's share of net spend per product category, up to ``at``.

    Columns are ``share_<category>`` (lower case, other characters as ``_``; products without a
    category, or unknown to ``products``, count as ``other``), one per category, sorted by name.
    A share is the category's net spend (purchases less returns, as in :func:`rfm_features`)
    over the customer's total net spend, clipped to [0, 1]; a customer without positive net
    spend has every share 0.
    """
    at_ns = int(_as_utc_naive(at).as_unit("ns").value)
    ids = pd.Index(customers["customer_id"])
    line_codes, line_ids = transactions["customer_id"].factorize()
    customer_of_id = ids.get_indexer(line_ids)
    customer = np.where(line_codes >= 0, customer_of_id[line_codes], -1)
    invoiced_ns = _nanoseconds(transactions["invoiced_at"])
    keep = (customer >= 0) & (invoiced_ns != _NAT) & (invoiced_ns <= at_ns)

    catalogue = products.drop_duplicates("product_id").set_index("product_id")["category"]
    product_codes, product_ids = transactions["product_id"].factorize()
    # One category per distinct product, plus a last entry for lines without a product id.
    per_product = pd.Series(catalogue.reindex(product_ids).to_numpy(), dtype=object)
    per_product = pd.concat([per_product, pd.Series([None], dtype=object)], ignore_index=True)
    product_category, categories = pd.factorize(per_product.fillna("other").map(_slug), sort=True)
    names = [str(c) for c in categories]
    line_category = product_category[np.where(product_codes >= 0, product_codes, len(product_ids))]
    n, m = len(ids), max(len(names), 1)

    amount = (
        transactions["quantity"].to_numpy(dtype=np.float64)
        * transactions["unit_price"].to_numpy(dtype=np.float64)
    )[keep]
    invoice_codes, invoice_ids = transactions["invoice"].factorize()
    cancelled = np.append(
        np.asarray(pd.Index(invoice_ids).astype(str).str.startswith("C"), dtype=bool), False
    )[np.where(invoice_codes >= 0, invoice_codes, len(invoice_ids))][keep]
    amount = np.where(cancelled, -np.abs(amount), amount)
    spend = np.bincount(
        customer[keep] * m + line_category[keep], weights=amount, minlength=n * m
    ).reshape(n, m)
    if "other" in names and not spend[:, names.index("other")].any():
        # The catch-all column exists only when some line has no known category.
        spend = np.delete(spend, names.index("other"), axis=1)
        names.remove("other")
    total = spend.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(total > 0, spend / total, 0.0).clip(0.0, 1.0)
    return pd.DataFrame(
        shares[:, : len(names)],
        index=pd.Index(ids, name="customer_id"),
        columns=[f"share_{name}" for name in names],
    )


def shares_from_spend(spend: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """:func:`category_shares` from net spend per customer and category instead of the lines.

    ``spend`` has ``customer_id``, ``category`` (the product's category as stored, ``other``
    for lines without a known one) and ``spend``, as :func:`store.features.category_spend_rows`
    reads it; every line it summarises must be dated at or before the time of the features.
    """
    ids = pd.Index(customers["customer_id"])
    slugs = spend["category"].astype(object).map(_slug)
    codes, categories = pd.factorize(slugs, sort=True)
    names = [str(c) for c in categories]
    n, m = len(ids), max(len(names), 1)
    rows = ids.get_indexer(spend["customer_id"])
    known = rows >= 0
    table = np.bincount(
        rows[known] * m + codes[known],
        weights=spend["spend"].to_numpy(dtype=np.float64)[known],
        minlength=n * m,
    ).reshape(n, m)
    if "other" in names and not table[:, names.index("other")].any():
        table = np.delete(table, names.index("other"), axis=1)
        names.remove("other")
    total = table.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(total > 0, table / total, 0.0).clip(0.0, 1.0)
    return pd.DataFrame(
        shares[:, : len(names)],
        index=pd.Index(ids, name="customer_id"),
        columns=[f"share_{name}" for name in names],
    )


def _slug(name: object) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in str(name).strip().lower())
    return text.strip("_") or "other"


def _rfm_table(
    ids: pd.Index,
    frequency: npt.NDArray[Any],
    monetary: npt.NDArray[Any],
    first: npt.NDArray[np.int64],
    last: npt.NDArray[np.int64],
    customers: pd.DataFrame,
    at_ns: int,
) -> pd.DataFrame:
    """The RFM table from per-customer orders, spend and first/last purchase (nanoseconds):
    recency and tenure at ``at_ns``, counted from sign-up for customers who never bought."""
    bought = frequency > 0

    signup_ns = _nanoseconds(customers["signup_at"])
    start = np.where(bought, first, signup_ns)
    has_signup = signup_ns != _NAT
    start = np.where(has_signup & (signup_ns < start), signup_ns, start)
    known_start = bought | has_signup
    tenure = np.where(known_start, (at_ns - start) / _NS_PER_DAY, 0.0).clip(min=0.0)
    recency = np.where(bought, (at_ns - last) / _NS_PER_DAY, tenure)
    with np.errstate(divide="ignore", invalid="ignore"):
        average = np.where(bought, monetary / frequency, 0.0)
    return pd.DataFrame(
        {
            "recency": recency,
            "frequency": frequency,
            "monetary": monetary,
            "tenure": tenure,
            "average_order_value": average,
        },
        index=pd.Index(ids, name="customer_id"),
        columns=list(RFM_COLUMNS),
    )
