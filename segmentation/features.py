"""Customer features built from the transaction log: recency, frequency, monetary value, tenure.

The inputs are the plain tables of :mod:`store.frames`; the output is one row of floats per
customer, ready for :class:`segmentation.Segmenter`.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
            Distinct invoices; several lines of one invoice count once.
        ``monetary``
            Sum of ``quantity * unit_price`` over all lines (returns, as negative lines, reduce it).
        ``tenure``
            Days from the first purchase, or from signup when that is earlier, to ``at``.
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
    # Lines without an invoice number share one "unknown" invoice per customer.
    n_invoices = len(invoice_ids) + 1
    invoice_codes = np.where(invoice_codes >= 0, invoice_codes, len(invoice_ids))[keep]

    monetary = np.bincount(customer, weights=amount, minlength=n)
    # An invoice is normally one customer's, but count (customer, invoice) pairs so that a shared
    # invoice number still counts once for each customer on it.
    pairs = pd.unique(customer.astype(np.int64) * n_invoices + invoice_codes)
    frequency = np.bincount(pairs // n_invoices, minlength=n).astype(np.float64)

    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, customer, invoiced_ns)
    np.maximum.at(last, customer, invoiced_ns)
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


_NAT = np.iinfo(np.int64).min


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
