"""The ``files`` source: customers, products and transactions read from CSV or Parquet files.

Each file's columns are mapped onto ours by ``[source.<table>.columns]`` (ours = theirs); a column
of the file that already carries our name is used without a mapping. Every column is read as
text first, so that zero-padded ids survive, and is then converted with explicit error handling.

Rows that cannot be used are never dropped silently: each gets the first reason that applies (see
:data:`REASONS`) and is written, with its original columns, its line in the source file (the header
is line 1; for Parquet the 1-based row number) and the reason, to ``<quarantine>/<table>.csv``.
Entirely empty lines carry no data and are skipped.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal
from zoneinfo import available_timezones

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_float_dtype,
    is_numeric_dtype,
    is_object_dtype,
    is_string_dtype,
)
from pandas.tseries.api import guess_datetime_format

from store.errors import DataError
from store.frames import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    PRODUCT_COLUMNS,
    TRANSACTION_COLUMNS,
    ShopData,
    no_events,
)
from store.sources.spec import FilesSource, TableFile

#: Why a row was set aside. Per table they are checked in this order and the first that applies is
#: the row's reason (transactions: missing_customer_id, bad_date, future_date (after the load's
#: time plus :data:`FUTURE_TOLERANCE`), bad_number, non_positive_price,
#: non_positive_quantity, cancelled_invoice, duplicate_line, unknown_customer). A duplicate line
#: repeats an earlier line of the file in every column (the first is kept); ``duplicates =
#: "keep"`` under [source] loads them all.
#: A transaction dated up to this far after the load is kept (clocks and time zones differ);
#: later ones (a typo such as 2099) are quarantined as ``future_date``.
FUTURE_TOLERANCE: Final = timedelta(days=1)

REASONS: Final[tuple[str, ...]] = (
    "missing_customer_id",
    "missing_product_id",
    "missing_event",
    "bad_date",
    "future_date",
    "bad_timezone",
    "bad_number",
    "non_positive_price",
    "non_positive_quantity",
    "cancelled_invoice",
    "duplicate_line",
    "duplicate_customer_id",
    "duplicate_product_id",
    "unknown_customer",
)

#: Keys of ``[source.transactions.columns]``: the transaction columns, plus ``amount`` (the line
#: total, instead of ``unit_price``) and ``description``/``category`` (for the product catalogue).
TRANSACTION_KEYS: Final[tuple[str, ...]] = (
    "invoice",
    "customer_id",
    "product_id",
    "quantity",
    "unit_price",
    "amount",
    "invoiced_at",
    "description",
    "category",
)

#: The product id of transaction lines whose file has no (or an empty) product column.
UNKNOWN_PRODUCT: Final = "unknown"

_CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv", ".dat"})
_COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".zip", ".xz", ".zst"})
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})

Mask = npt.NDArray[np.bool_]


# ------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Table:
    """One file as read: its original columns, the source line of each row, our column mapping."""

    name: str
    path: Path
    spec: TableFile
    frame: pd.DataFrame
    line: npt.NDArray[np.int64]
    columns: dict[str, str]

    def has(self, key: str) -> bool:
        return key in self.columns

    def column(self, key: str) -> pd.Series:
        return self.frame[self.columns[key]]


def _resolve(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


def _file_format(name: str, spec: TableFile, path: Path) -> Literal["csv", "parquet"]:
    if spec.format != "auto":
        return spec.format
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    if last in _PARQUET_SUFFIXES:
        return "parquet"
    if last in _CSV_SUFFIXES or last in _COMPRESSED_SUFFIXES:
        return "csv"
    raise DataError(
        f"cannot tell the format of {name} file {path} from its extension; "
        f'set format = "csv" or format = "parquet" under [source.{name}]'
    )


def _listing(columns: Iterable[str]) -> str:
    return ", ".join(repr(c) for c in columns)


def _read_csv(name: str, spec: TableFile, path: Path) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    separator = spec.separator
    if "separator" not in spec.model_fields_set and ".tsv" in [s.lower() for s in path.suffixes]:
        separator = "\t"
    # One character (or whitespace runs) is the fast C parser; any other regex needs Python's.
    engine: Literal["c", "python"] = "c" if len(separator) == 1 or separator == r"\s+" else "python"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                sep=separator,
                engine=engine,
                dtype=str,
                # A spreadsheet's UTF-8 file may start with a byte-order mark: not a character
                # of the first column's name.
                encoding="utf-8-sig" if _is_utf8(spec.encoding) else spec.encoding,
                skip_blank_lines=False,
                index_col=False,
            )
    except pd.errors.ParserWarning:
        raise DataError(
            f"cannot read {name} file {path} as CSV: the first row has more fields than the header "
            f"(separator {separator!r})"
        ) from None
    except (OSError, ValueError, LookupError, re.error) as exc:
        raise DataError(f"cannot read {name} file {path} as CSV: {exc}") from None
    frame.columns = pd.Index([str(c) for c in frame.columns])
    # The source line of each row: a quoted value may span lines, so count the newlines inside.
    physical = np.ones(len(frame), dtype=np.int64)
    for column in frame.columns:
        values = frame[column]
        if is_string_dtype(values):
            physical += values.str.count("\n").fillna(0).to_numpy(dtype=np.int64)
    header_lines = 1 + sum(str(c).count("\n") for c in frame.columns)
    line = header_lines + 1 + np.cumsum(physical) - physical
    # Blank lines (kept above so that the line count is right) carry no data.
    keep = frame.notna().any(axis=1).to_numpy(dtype=bool)
    if not keep.all():
        frame = frame.loc[keep].reset_index(drop=True)
        line = line[keep]
    return frame, line


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in {"utf-8", "utf8"}


def _read_parquet(name: str, path: Path) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {name} file {path} as Parquet: {exc}") from None
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    frame = frame.reset_index(drop=True)
    frame.columns = pd.Index([str(c) for c in frame.columns])
    return frame, np.arange(1, len(frame) + 1, dtype=np.int64)


def _mapping(
    name: str, spec: TableFile, path: Path, file_columns: Sequence[str], keys: Sequence[str]
) -> dict[str, str]:
    for ours in spec.columns:
        if ours not in keys:
            raise DataError(
                f"unknown key {ours!r} under [source.{name}.columns]; known keys: {', '.join(keys)}"
            )
    present = set(file_columns)
    for ours, theirs in spec.columns.items():
        if theirs not in present:
            raise DataError(
                f"{name} file {path} has no column {theirs!r} (mapped by {ours} = {theirs!r} "
                f"under [source.{name}.columns]); its columns are: {_listing(file_columns)}"
            )
    mapping = dict(spec.columns)
    for key in keys:
        if key not in mapping and key in present:
            mapping[key] = key
    return mapping


def _require(table: _Table, key: str) -> None:
    if not table.has(key):
        raise DataError(
            f"{table.name} file {table.path} has no column for {key!r}: add "
            f'{key} = "<column>" under [source.{table.name}.columns]; '
            f"its columns are: {_listing(table.frame.columns)}"
        )


def _read(name: str, spec: TableFile, root: Path, keys: Sequence[str]) -> _Table:
    path = _resolve(spec.path, root)
    if not path.is_file():
        raise DataError(f"{name} file not found: {path}")
    if _file_format(name, spec, path) == "parquet":
        frame, line = _read_parquet(name, path)
    else:
        frame, line = _read_csv(name, spec, path)
    if spec.row_ids:
        # No id column: the row number (1 = the first data row) is the customer id.
        frame = frame.assign(**{_ROW_ID: (line - 1).astype(str)})
    columns = _mapping(name, spec, path, [c for c in frame.columns if c != _ROW_ID], keys)
    if spec.row_ids:
        columns["customer_id"] = _ROW_ID
    return _Table(name=name, path=path, spec=spec, frame=frame, line=line, columns=columns)


#: The column a ``row_ids`` table gets for its generated customer ids.
_ROW_ID = "__row_id"


# ---------------------------------------------------------------------------------- converting


def _all_whole(values: pd.Series) -> bool:
    """Whether every value is a finite whole number (true when there are none)."""
    array = values.to_numpy(dtype="float64")
    return bool(np.isfinite(array).all() and (np.mod(array, 1) == 0).all())


def _text(column: pd.Series) -> pd.Series:
    """Values as stripped strings; missing and blank values are NA."""
    if is_float_dtype(column) and _all_whole(column.dropna()):
        column = column.astype("Int64")  # ids stored as floats: 7.0 is "7"
    text = column.astype("str").str.strip()
    return text.mask(text == "")


def _mask(values: pd.Series) -> Mask:
    return values.to_numpy(dtype=bool, na_value=False)


def _number(column: pd.Series) -> pd.Series:
    """Values as float64; anything that is not a number is NaN."""
    if is_numeric_dtype(column) and not is_bool_dtype(column):
        return column.astype("float64")
    return _per_distinct(
        _text(column), lambda text: pd.to_numeric(text, errors="coerce").astype("float64")
    )


def _per_distinct(text: pd.Series, convert: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``convert`` applied to each distinct value once, spread back over the rows.

    Dates and prices repeat a lot in transaction files, so this is much faster than converting
    every row. ``convert`` must return a NumPy-backed Series of the same length.
    """
    codes, uniques = pd.factorize(text)
    distinct = pd.concat(
        [pd.Series(uniques, dtype=text.dtype), pd.Series([None], dtype=text.dtype)],
        ignore_index=True,
    )
    converted = convert(distinct).to_numpy()
    # A missing value has code -1: the None appended last.
    return pd.Series(converted[codes], index=text.index)


def _guess_format(text: pd.Series) -> str:
    samples = text.dropna().head(10_000).drop_duplicates().head(50)
    with warnings.catch_warnings():
        # It warns when a sample reads day-first; the most common guess wins anyway.
        warnings.simplefilter("ignore")
        guesses = Counter(g for g in (guess_datetime_format(str(v)) for v in samples) if g)
    if not guesses:
        return "mixed"
    guess = guesses.most_common(1)[0][0]
    return "ISO8601" if guess.startswith("%Y-%m-%d") else guess


def _naive_ns(values: pd.Series) -> pd.Series:
    """Naive UTC ``datetime64[ns]`` (as the demo source makes); out-of-range values become NaT."""
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    in_range = values.between(pd.Timestamp.min, pd.Timestamp.max)
    return values.where(in_range).astype("datetime64[ns]")


def _datetime(column: pd.Series, date_format: str | None) -> tuple[pd.Series, Mask]:
    """Naive UTC datetimes (NaT where missing or unparseable), and where a value was given."""
    if is_datetime64_any_dtype(column):
        return _naive_ns(column), _mask(column.notna())
    text = _text(column)
    fmt = date_format or _guess_format(text)

    def parse(distinct: pd.Series) -> pd.Series:
        # Aware values are converted to UTC, naive ones are taken as UTC.
        return _naive_ns(pd.to_datetime(distinct, format=fmt, errors="coerce", utc=True))

    return _per_distinct(text, parse), _mask(text.notna())


def _empty_text(index: pd.Index) -> pd.Series:
    return pd.Series(np.full(len(index), np.nan, dtype=object), index=index, dtype="str")


def _trait(column: pd.Series) -> pd.Series:
    """A trait column: numbers when every given value is a number, else stripped text."""
    if not (is_string_dtype(column) or is_object_dtype(column)):
        return column
    text = _text(column)
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    given = text.notna()
    if not given.any() or bool((numbers.notna() != given).any()):
        return text
    if bool(given.all()) and _all_whole(numbers):
        return numbers.astype("int64")
    return numbers


class _Verdict:
    """The reason of each row of one table (0 = usable), the first that applies."""

    def __init__(self, rows: int) -> None:
        self.codes = np.zeros(rows, dtype=np.int8)

    def flag(self, mask: Mask, reason: str) -> None:
        self.codes[(self.codes == 0) & mask] = REASONS.index(reason) + 1

    @property
    def ok(self) -> Mask:
        ok: Mask = self.codes == 0
        return ok

    def reasons(self) -> npt.NDArray[np.object_]:
        """The reason of each set-aside row, in row order."""
        names = np.array(("", *REASONS), dtype=object)
        reasons: npt.NDArray[np.object_] = names[self.codes[self.codes != 0]]
        return reasons

    def counts(self) -> Counter[str]:
        return Counter({str(k): int(v) for k, v in Counter(self.reasons().tolist()).items()})


# ---------------------------------------------------------------------------------- the tables


def _customers(table: _Table) -> tuple[pd.DataFrame, _Verdict]:
    _require(table, "customer_id")
    frame = table.frame
    verdict = _Verdict(len(frame))
    customer_id = _text(table.column("customer_id"))
    verdict.flag(_mask(customer_id.isna()), "missing_customer_id")
    if table.has("signup_at"):
        signup_at, given = _datetime(table.column("signup_at"), table.spec.date_format)
        verdict.flag(given & _mask(signup_at.isna()), "bad_date")
    else:
        signup_at = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if table.has("timezone"):
        timezone = _text(table.column("timezone")).fillna("UTC")
        verdict.flag(~_mask(timezone.isin(available_timezones())), "bad_timezone")
    else:
        timezone = pd.Series("UTC", index=frame.index, dtype="str")
    duplicate = np.zeros(len(frame), dtype=bool)
    duplicate[verdict.ok] = customer_id[verdict.ok].duplicated(keep="first").to_numpy(dtype=bool)
    verdict.flag(duplicate, "duplicate_customer_id")

    out = pd.DataFrame(index=frame.index)
    out["customer_id"] = customer_id
    for key in ("email", "first_name", "last_name", "country"):
        out[key] = _text(table.column(key)) if table.has(key) else _empty_text(frame.index)
    out["timezone"] = timezone
    out["signup_at"] = signup_at
    for name in _trait_names(table):
        out[name] = _trait(frame[name])
    return out.loc[verdict.ok].reset_index(drop=True), verdict


def _events(table: _Table, known_customers: pd.Series) -> tuple[pd.DataFrame, _Verdict]:
    """The events feed: customer, event name and time; unknown customers are set aside."""
    for key in EVENT_COLUMNS:
        _require(table, key)
    verdict = _Verdict(len(table.frame))
    customer_id = _text(table.column("customer_id"))
    verdict.flag(_mask(customer_id.isna()), "missing_customer_id")
    event = _text(table.column("event"))
    verdict.flag(_mask(event.isna()), "missing_event")
    occurred_at, _given = _datetime(table.column("occurred_at"), table.spec.date_format)
    verdict.flag(_mask(occurred_at.isna()), "bad_date")
    verdict.flag(~_mask(customer_id.isin(known_customers)), "unknown_customer")
    out = pd.DataFrame({"customer_id": customer_id, "event": event, "occurred_at": occurred_at})
    return out.loc[verdict.ok].reset_index(drop=True), verdict


def _trait_names(table: _Table) -> list[str]:
    used = set(table.columns.values())
    names: list[str] = []
    for name in table.spec.traits:
        if name == "*":
            names += [c for c in table.frame.columns if c not in used and c not in CUSTOMER_COLUMNS]
            continue
        if name not in table.frame.columns:
            raise DataError(
                f"{table.name} file {table.path} has no column {name!r} (listed in traits under "
                f"[source.{table.name}]); its columns are: {_listing(table.frame.columns)}"
            )
        if name in CUSTOMER_COLUMNS:
            raise DataError(
                f"trait {name!r} under [source.{table.name}] has the name of a standard customer "
                f'column; map it with {name} = "{name}" under [source.{table.name}.columns] instead'
            )
        names.append(name)
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class _Lines:
    """Usable transaction lines, what they say of products, when each customer was first seen."""

    transactions: pd.DataFrame
    description: pd.Series
    category: pd.Series
    first_seen: pd.DataFrame
    verdict: _Verdict


def _transactions(
    table: _Table,
    known_customers: pd.Series | None,
    duplicates: str = "quarantine",
    latest: datetime | None = None,
) -> _Lines:
    _require(table, "customer_id")
    _require(table, "invoiced_at")
    explicit = table.spec.columns
    if "unit_price" in explicit and "amount" in explicit:
        raise DataError(
            f"map either unit_price (the price of one item) or amount (the line total) under "
            f"[source.{table.name}.columns], not both"
        )
    if not table.has("unit_price") and not table.has("amount"):
        raise DataError(
            f"{table.name} file {table.path} has no column for 'unit_price' or 'amount': add "
            f'unit_price = "<column>" (the price of one item) or amount = "<column>" (the line '
            f"total) under [source.{table.name}.columns]; its columns are: "
            f"{_listing(table.frame.columns)}"
        )
    frame = table.frame
    index = frame.index
    verdict = _Verdict(len(frame))

    customer_id = _text(table.column("customer_id"))
    verdict.flag(_mask(customer_id.isna()), "missing_customer_id")
    invoiced_at, _ = _datetime(table.column("invoiced_at"), table.spec.date_format)
    verdict.flag(_mask(invoiced_at.isna()), "bad_date")
    if latest is not None:
        verdict.flag(_mask(invoiced_at > pd.Timestamp(latest)), "future_date")

    quantity = (
        _number(table.column("quantity"))
        if table.has("quantity")
        else pd.Series(1.0, index=index, dtype="float64")
    )
    by_amount = not table.has("unit_price")
    price = _number(table.column("amount" if by_amount else "unit_price"))
    quantity_values = quantity.to_numpy(dtype="float64")
    price_values = price.to_numpy(dtype="float64")
    # Quantities are whole items; a fraction is as unusable as text.
    finite_quantity = np.isfinite(quantity_values)
    whole = finite_quantity & (np.mod(np.where(finite_quantity, quantity_values, 0), 1) == 0)
    verdict.flag(~whole | ~np.isfinite(price_values), "bad_number")
    verdict.flag(price_values <= 0, "non_positive_price")
    verdict.flag(quantity_values <= 0, "non_positive_quantity")
    invoice: pd.Series | None = None
    if table.has("invoice"):
        invoice = _text(table.column("invoice"))
        verdict.flag(_mask(invoice.str.startswith("C")), "cancelled_invoice")
    if duplicates == "quarantine":
        verdict.flag(frame.duplicated(keep="first").to_numpy(dtype=bool), "duplicate_line")
    if known_customers is not None:
        verdict.flag(~_mask(customer_id.isin(known_customers)), "unknown_customer")

    seen = customer_id.notna()
    first_seen = (
        pd.DataFrame({"customer_id": customer_id[seen], "signup_at": invoiced_at[seen]})
        .groupby("customer_id", sort=False)["signup_at"]
        .min()
        .reset_index()
    )

    ok = verdict.ok
    at = invoiced_at[ok]
    day = (at.dt.year * 10000 + at.dt.month * 100 + at.dt.day).astype("int64").astype("str")
    by_day = customer_id[ok] + "-" + day
    lines = pd.DataFrame(index=at.index)
    lines["invoice"] = by_day if invoice is None else invoice[ok].fillna(by_day)
    lines["customer_id"] = customer_id[ok]
    lines["product_id"] = (
        _text(table.column("product_id"))[ok].fillna(UNKNOWN_PRODUCT)
        if table.has("product_id")
        else pd.Series(UNKNOWN_PRODUCT, index=at.index, dtype="str")
    )
    lines["quantity"] = quantity[ok].astype("int64")
    lines["unit_price"] = price[ok] / quantity[ok] if by_amount else price[ok]
    lines["invoiced_at"] = at
    lines = lines.reset_index(drop=True)

    def optional(key: str) -> pd.Series:
        values = _text(table.column(key)) if table.has(key) else _empty_text(index)
        return values[ok].reset_index(drop=True)

    return _Lines(
        transactions=lines,
        description=optional("description"),
        category=optional("category"),
        first_seen=first_seen,
        verdict=verdict,
    )


def _no_lines() -> _Lines:
    """No transaction log: a customers file is segmented by its traits alone."""
    empty = pd.DataFrame(
        {
            "invoice": pd.Series(dtype="str"),
            "customer_id": pd.Series(dtype="str"),
            "product_id": pd.Series(dtype="str"),
            "quantity": pd.Series(dtype="int64"),
            "unit_price": pd.Series(dtype="float64"),
            "invoiced_at": pd.Series(dtype="datetime64[ns]"),
        }
    )
    text = pd.Series(dtype="str")
    first_seen = pd.DataFrame(
        {"customer_id": text, "first_seen": pd.Series(dtype="datetime64[ns]")}
    )
    return _Lines(empty, text, text, first_seen, _Verdict(0))


def _derived_products(lines: _Lines) -> pd.DataFrame:
    """The catalogue as the transactions describe it: price = median unit price."""
    tx = lines.transactions
    grouped = pd.DataFrame(
        {
            "product_id": tx["product_id"],
            "name": lines.description,
            "category": lines.category,
            "price": tx["unit_price"],
        }
    ).groupby("product_id", sort=False)
    products = pd.DataFrame(
        {
            "name": grouped["name"].first(),
            "category": grouped["category"].first(),
            "price": grouped["price"].median(),
        }
    ).reset_index()
    products["name"] = products["name"].fillna(products["product_id"])
    return products[list(PRODUCT_COLUMNS)]


def _products(table: _Table, lines: _Lines) -> tuple[pd.DataFrame, _Verdict]:
    """The products file; what it lacks (products, names, prices) is filled from the lines."""
    _require(table, "product_id")
    frame = table.frame
    verdict = _Verdict(len(frame))
    product_id = _text(table.column("product_id"))
    verdict.flag(_mask(product_id.isna()), "missing_product_id")
    if table.has("price"):
        given = _mask(_text(table.column("price")).notna())
        price = _number(table.column("price"))
        verdict.flag(given & ~np.isfinite(price.to_numpy(dtype="float64")), "bad_number")
    else:
        price = pd.Series(np.nan, index=frame.index, dtype="float64")
    duplicate = np.zeros(len(frame), dtype=bool)
    duplicate[verdict.ok] = product_id[verdict.ok].duplicated(keep="first").to_numpy(dtype=bool)
    verdict.flag(duplicate, "duplicate_product_id")

    out = pd.DataFrame(index=frame.index)
    out["product_id"] = product_id
    for key in ("name", "category"):
        out[key] = _text(table.column(key)) if table.has(key) else _empty_text(frame.index)
    out["price"] = price
    out = out.loc[verdict.ok].set_index("product_id")
    derived = _derived_products(lines).set_index("product_id")
    out = out.fillna(derived.reindex(out.index))
    extra = derived.loc[~derived.index.isin(out.index)]
    products = pd.concat([out, extra]).reset_index()
    return products[list(PRODUCT_COLUMNS)], verdict


def _derived_customers(lines: _Lines) -> pd.DataFrame:
    """One customer per distinct id of the transactions file; signed up at the first purchase."""
    seen = lines.first_seen
    out = pd.DataFrame(index=seen.index)
    out["customer_id"] = seen["customer_id"]
    for key in ("email", "first_name", "last_name", "country"):
        out[key] = _empty_text(seen.index)
    out["timezone"] = pd.Series("UTC", index=seen.index, dtype="str")
    out["signup_at"] = seen["signup_at"]
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------- quarantine


def _write_quarantine(
    directory: Path, name: str, table: _Table | None, verdict: _Verdict | None
) -> None:
    target = directory / f"{name}.csv"
    try:
        if table is None or verdict is None or verdict.ok.all():
            target.unlink(missing_ok=True)
            return
        bad = ~verdict.ok
        rows = table.frame.loc[bad]
        extra = pd.DataFrame(
            {"line": table.line[bad], "reason": verdict.reasons()}, index=rows.index
        )
        directory.mkdir(parents=True, exist_ok=True)
        pd.concat([rows, extra], axis=1).to_csv(target, index=False)
    except OSError as exc:
        raise DataError(f"cannot write quarantine file {target}: {exc}") from None


# ---------------------------------------------------------------------------------- public API


def load_files(source: FilesSource, root: Path, loaded_at: datetime | None = None) -> ShopData:
    """Read the files of ``source`` (relative paths from ``root``, the config file's folder).

    Transactions dated after ``loaded_at`` (naive UTC; default now) plus
    :data:`FUTURE_TOLERANCE` are quarantined as ``future_date``.

    Returns the contract tables of :mod:`store.frames` and, in ``quarantined``, how many rows were
    set aside by reason over all files; those rows are written to ``<quarantine>/<table>.csv``
    (and a quarantine file left by an earlier load is removed when its table has no bad rows).

    Raises :class:`~campaigns.errors.DataError` when a file is missing or unreadable, a mapped
    column is absent from its file, or a required column has no mapping.
    """
    tx_table = (
        _read("transactions", source.transactions, root, TRANSACTION_KEYS)
        if source.transactions
        else None
    )
    customer_table = (
        _read("customers", source.customers, root, CUSTOMER_COLUMNS) if source.customers else None
    )
    product_table = (
        _read("products", source.products, root, PRODUCT_COLUMNS) if source.products else None
    )

    latest = (loaded_at or datetime.now(UTC).replace(tzinfo=None)) + FUTURE_TOLERANCE
    customer_verdict: _Verdict | None = None
    if customer_table is not None:
        customers, customer_verdict = _customers(customer_table)
        lines = (
            _transactions(tx_table, customers["customer_id"], source.duplicates, latest)
            if tx_table is not None
            else _no_lines()
        )
    else:
        assert tx_table is not None  # the config requires one of the two
        lines = _transactions(tx_table, None, source.duplicates, latest)
        customers = _derived_customers(lines)

    product_verdict: _Verdict | None = None
    if product_table is not None:
        products, product_verdict = _products(product_table, lines)
    else:
        products = _derived_products(lines)

    event_table = _read("events", source.events, root, EVENT_COLUMNS) if source.events else None
    event_verdict: _Verdict | None = None
    events = no_events()
    if event_table is not None:
        events, event_verdict = _events(event_table, customers["customer_id"])

    directory = _resolve(source.quarantine, root)
    _write_quarantine(directory, "events", event_table, event_verdict)
    _write_quarantine(directory, "customers", customer_table, customer_verdict)
    _write_quarantine(directory, "products", product_table, product_verdict)
    _write_quarantine(directory, "transactions", tx_table, lines.verdict)

    counts: Counter[str] = Counter()
    for verdict in (customer_verdict, product_verdict, lines.verdict, event_verdict):
        if verdict is not None:
            counts.update(verdict.counts())
    quarantined = {reason: counts[reason] for reason in REASONS if counts[reason]}

    return ShopData(
        customers=customers,
        products=products.reset_index(drop=True),
        transactions=lines.transactions[list(TRANSACTION_COLUMNS)],
        quarantined=quarantined,
        events=events,
    )
