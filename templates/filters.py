"""The filters our templates may use, registered in one place (:data:`FILTERS`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

_CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(value: Any, currency: str = "GBP") -> str:
    """``{{ 12.5 | money }}`` -> ``£12.50``; ``{{ 1234 | money("EUR") }}`` -> ``€1,234.00``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        got = "a missing value" if value is None else type(value).__name__
        raise TypeError(f"money needs a number, got {got}")
    amount = float(value)
    symbol = _CURRENCY_SYMBOLS.get(currency.upper(), currency.upper() + " ")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.2f}"


def date_format(value: Any, fmt: str = "%-d %B %Y") -> str:
    """``{{ customer.signup_at | date }}`` -> ``3 March 2025``; any strftime format may be given."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, (date, datetime)):
        raise TypeError(f"date filter needs a date, got {type(value).__name__}")
    return value.strftime(fmt)


def or_default(value: Any, fallback: Any = "") -> Any:
    """``{{ customer.first_name | or_default("there") }}``: the fallback when the value is
    missing, empty or NaN (data gaps), unlike Jinja's ``default``, which only covers undefined."""
    if value is None or value == "":
        return fallback
    if isinstance(value, float) and math.isnan(value):
        return fallback
    return value


#: Wraps a URL that must not become a tracked link (U+2063, INVISIBLE SEPARATOR); the renderer
#: removes it from every message, tracked or not.
NOTRACK_MARK = "\u2063"


def notrack(value: Any) -> str:
    """``{{ "https://example.com/terms" | notrack }}``: this URL stays as it is when the
    campaign's links are tracked (``track_links = true``)."""
    return f"{NOTRACK_MARK}{value}{NOTRACK_MARK}"


FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "date": date_format,
    "or_default": or_default,
    "notrack": notrack,
}
