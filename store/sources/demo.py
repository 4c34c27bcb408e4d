"""The built-in demo source: a synthetic online coffee shop whose true behaviour is known.

:func:`generate_demo_shop` builds two years of history for any number of customers,
deterministically from a seed (one :func:`numpy.random.default_rng`, no global state, no wall
clock), fully vectorised: a million customers take seconds, not minutes.

The shop
    About 200 products in six categories (Coffee, Tea, Equipment, Snacks, Gifts, Accessories),
    each with its own price range. Customers live in six countries (GB, DE, FR, US, ES, NL) with a
    matching IANA timezone and carry the traits ``age``, ``gender``, ``income`` (about 2% missing)
    and ``children``. Orders have one to four lines; some lines are sold at a discount.

The latent groups (column ``latent_group``, the truth segmentation should recover)
    =============== ===== ========================================================================
    group           share behaviour
    =============== ===== ========================================================================
    champions       10%   ~14 orders a year up to today, big baskets, equipment and gifts; older,
                          higher income
    loyal           25%   ~5 orders a year up to today, mid-sized baskets, mostly coffee and tea
    bargain_hunters 20%   ~9 small orders a year (one cheap line, often discounted, snacks and
                          tea); younger, lower income
    new             15%   signed up in the last 90 days, one or two orders
    lapsed          30%   ~4 orders a year, but the last order is 6 to 18 months before ``end``
    =============== ===== ========================================================================

    Every customer has at least one order; order rates vary within a group (gamma-distributed).

The response model (for experiments; see :func:`response_probability`)
    The probability that a customer converts within 14 days of a message is
    ``TRUE_CONVERSION_BASE[group] + TRUE_VARIANT_LIFT[variant] * multiplier(variant, group)``, where
    the multiplier is 1 except for the entries of ``TRUE_LIFT_MULTIPLIER``: the ``discount`` lift is
    tripled for bargain hunters and zero for champions (who buy anyway). Customers who get no
    message (a holdout) convert with ``HOLDOUT_FACTOR`` times the baseline.

    ================ ======== ============== =============== ============= ============
    group            baseline control (+0)   discount (+.02) story (+.005) holdout
    ================ ======== ============== =============== ============= ============
    champions        0.12     0.12           0.12            0.125         0.096
    loyal            0.08     0.08           0.10            0.085         0.064
    bargain_hunters  0.06     0.06           0.12            0.065         0.048
    new              0.05     0.05           0.07            0.055         0.040
    lapsed           0.02     0.02           0.04            0.025         0.016
    ================ ======== ============== =============== ============= ============
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from store.frames import CUSTOMER_COLUMNS, PRODUCT_COLUMNS, TRANSACTION_COLUMNS, ShopData
from store.sources.demo_events import abandoned_carts

__all__ = [
    "DEMO_TRAITS",
    "GROUP_SHARES",
    "HOLDOUT_FACTOR",
    "TRUE_CONVERSION_BASE",
    "TRUE_LIFT_MULTIPLIER",
    "TRUE_VARIANT_LIFT",
    "generate_demo_shop",
    "response_probability",
    "simulate_conversions",
    "true_probability",
]

# ------------------------------------------------------------------------------------ the truth

#: Probability of converting within 14 days of a message, by latent group, without any lift.
TRUE_CONVERSION_BASE: dict[str, float] = {
    "champions": 0.12,
    "loyal": 0.08,
    "bargain_hunters": 0.06,
    "new": 0.05,
    "lapsed": 0.02,
}

#: Absolute lift in conversion probability by template variant. Unknown variants have no lift.
TRUE_VARIANT_LIFT: dict[str, float] = {"control": 0.0, "discount": 0.02, "story": 0.005}

#: The heterogeneous effect: (variant, group) -> factor applied to that variant's lift (default 1).
TRUE_LIFT_MULTIPLIER: dict[tuple[str, str], float] = {
    ("discount", "bargain_hunters"): 3.0,
    ("discount", "champions"): 0.0,
}

#: Customers who receive no message (holdout) convert at this fraction of their baseline.
HOLDOUT_FACTOR = 0.8

# ------------------------------------------------------------------------------- the behaviour

_DAY = 86_400  # seconds
_HISTORY_DAYS = 730
_NEW_DAYS = 90
_ESTABLISHED_MIN_DAYS = 100  # established groups signed up at least this long before `end`
_LAPSED_STOP_DAYS = (183, 540)  # lapsed customers' last possible order, in days before `end`
_MISSING_INCOME = 0.02

_TRAITS = ("age", "gender", "income", "children", "latent_group")

#: The demo shop's customer traits, the columns it has besides ``CUSTOMER_COLUMNS``.
DEMO_TRAITS = _TRAITS


@dataclass(frozen=True)
class _Group:
    share: float
    orders_per_year: float  # mean of a gamma-distributed rate; 0 = "new" (one or two orders)
    lines: tuple[float, float, float, float]  # P(order has 1, 2, 3, 4 lines)
    extra_quantity: float  # quantity = 1 + Poisson(extra_quantity)
    discount_rate: float
    categories: tuple[float, ...]  # weights over the categories of _CATALOGUE, in order
    age_mean: float
    income_median: float
    children_mean: float


_GROUPS: dict[str, _Group] = {
    "champions": _Group(
        0.10, 14.0, (0.25, 0.35, 0.25, 0.15), 0.6, 0.05, (35, 10, 20, 5, 15, 15), 46, 62_000, 1.1
    ),
    "loyal": _Group(
        0.25, 5.0, (0.40, 0.35, 0.15, 0.10), 0.4, 0.08, (50, 20, 5, 10, 5, 10), 42, 47_000, 1.2
    ),
    "bargain_hunters": _Group(
        0.20, 9.0, (0.75, 0.18, 0.05, 0.02), 0.1, 0.40, (30, 25, 0.5, 35, 1, 8.5), 33, 34_000, 0.9
    ),
    "new": _Group(
        0.15, 0.0, (0.50, 0.30, 0.15, 0.05), 0.3, 0.10, (35, 15, 15, 10, 15, 10), 31, 39_000, 0.5
    ),
    "lapsed": _Group(
        0.30, 4.0, (0.50, 0.30, 0.15, 0.05), 0.3, 0.08, (40, 25, 5, 15, 10, 5), 38, 42_000, 0.8
    ),
}

#: Target share of each latent group among customers.
GROUP_SHARES: dict[str, float] = {name: g.share for name, g in _GROUPS.items()}

_GROUP_NAMES = tuple(_GROUPS)
_NEW = _GROUP_NAMES.index("new")
_LAPSED = _GROUP_NAMES.index("lapsed")

_COUNTRIES = (
    ("GB", "Europe/London", 0.30),
    ("DE", "Europe/Berlin", 0.20),
    ("FR", "Europe/Paris", 0.15),
    ("US", "America/New_York", 0.15),
    ("ES", "Europe/Madrid", 0.10),
    ("NL", "Europe/Amsterdam", 0.10),
)
_GENDERS = ("female", "male", "other")
_GENDER_P = (0.52, 0.45, 0.03)

_FEMALE = (
    *("Olivia", "Emma", "Amelia", "Sophie", "Charlotte", "Hannah", "Lena", "Marie", "Léa", "Chloé"),
    *("Camille", "Manon", "Zoë", "Lucía", "María", "Carmen", "Paula", "Sara", "Anna", "Emily"),
    *("Grace", "Isabella", "Mia", "Julia", "Sanne", "Fleur", "Eva", "Laura", "Clara", "Ava"),
)
_MALE = (
    *("Oliver", "George", "Harry", "Jack", "Noah", "Leon", "Paul", "Lukas", "Felix", "Jonas"),
    *("Lucas", "Hugo", "Louis", "Gabriel", "Jules", "Arthur", "Pablo", "Daniel", "Alejandro"),
    *("Javier", "James", "Liam", "Ethan", "Mason", "Daan", "Sem", "Bram", "Thomas", "Max", "Adam"),
)
_LAST = (
    *("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Walker", "Johnson"),
    *("Miller", "Davis", "Moore", "Anderson", "Jackson", "O'Brien", "Müller", "Schmidt"),
    *("Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Martin", "Bernard"),
    *("Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "García", "Fernández"),
    *("González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "de Jong", "Jansen"),
    *("de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos"),
)


@dataclass(frozen=True)
class _Category:
    name: str
    count: int
    price: tuple[float, float]  # list-price range (before the size factor)
    words: tuple[tuple[str, ...], ...]  # names are one word from each list, joined by spaces
    size_factor: tuple[float, ...] = ()  # price factor by the last word list, when it is a size


_CATALOGUE = (
    _Category(
        "Coffee",
        50,
        (7.0, 12.0),
        (
            (
                *("Ethiopian", "Colombian", "Kenyan", "Guatemalan", "Brazilian", "Sumatran"),
                *("Rwandan", "Peruvian", "Honduran", "Costa Rican"),
            ),
            ("Single-Origin Beans", "Espresso Roast", "Filter Roast", "Decaf Beans", "Blend"),
            ("250g", "500g", "1kg"),
        ),
        (1.0, 1.8, 3.2),
    ),
    _Category(
        "Tea",
        35,
        (4.0, 9.0),
        (
            (
                *("Darjeeling", "Assam", "Earl Grey", "Sencha", "Jasmine", "Rooibos", "Chamomile"),
                *("Peppermint", "Oolong", "Chai"),
            ),
            ("Loose Leaf", "Tea Bags", "Pyramid Bags"),
            ("50g", "100g", "250g"),
        ),
        (1.0, 1.7, 3.5),
    ),
    _Category(
        "Equipment",
        30,
        (25.0, 250.0),
        (
            ("Classic", "Pro", "Compact", "Barista", "Travel", "Home"),
            (
                *("Burr Grinder", "Pour-Over Kettle", "French Press", "Espresso Machine"),
                *("AeroPress", "Moka Pot", "Milk Frother", "Brew Scale"),
            ),
        ),
    ),
    _Category(
        "Snacks",
        30,
        (2.0, 4.0),
        (
            ("Dark Chocolate", "Almond", "Hazelnut", "Oat", "Salted Caramel", "Ginger", "Lemon"),
            ("Biscotti", "Cookies", "Brownie", "Flapjack", "Truffles"),
            ("Single", "6-Pack", "Box"),
        ),
        (1.0, 2.5, 4.0),
    ),
    _Category(
        "Gifts",
        25,
        (18.0, 60.0),
        (
            ("Discovery", "Deluxe", "Origins", "Tea Lover's", "Barista", "Holiday"),
            ("Gift Box", "Hamper", "Tasting Set", "Gift Card", "3-Month Subscription"),
        ),
    ),
    _Category(
        "Accessories",
        30,
        (5.0, 35.0),
        (
            ("Ceramic", "Glass", "Enamel", "Bamboo", "Stainless"),
            (
                *("Mug", "Cup Set", "Travel Tumbler", "Milk Jug", "Storage Canister"),
                *("Tea Infuser", "Coaster Set"),
            ),
        ),
    ),
)

_IntArray = npt.NDArray[np.int64]
_FloatArray = npt.NDArray[np.float64]


def _slug(name: str) -> str:
    """Lowercase ASCII letters only: "O'Brien" -> "obrien", "Müller" -> "muller"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_name.lower() if ch.isalpha())


def _ids(prefix: str, count: int, width: int) -> pd.Series[str]:
    numbers = pd.Series(np.arange(1, count + 1)).astype(str)
    return prefix + numbers.str.zfill(max(width, len(str(count))))


def _take(values: pd.Series[str], index: _IntArray) -> pd.Series[str]:
    return values.iloc[index].reset_index(drop=True)


def _draw_by_group(rng: np.random.Generator, weights: _FloatArray, groups: _IntArray) -> _IntArray:
    """One categorical draw per row, from the row's group's weights (a groups x k array)."""
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(groups))
    drawn = np.zeros(len(groups), dtype=np.int64)
    # One pass per category, never per row: memory stays at one float per row.
    for k in range(weights.shape[1] - 1):
        drawn += u >= cumulative[groups, k]
    return drawn


def _group_array(attribute: str) -> _FloatArray:
    return np.array([getattr(g, attribute) for g in _GROUPS.values()], dtype=np.float64)


# ---------------------------------------------------------------------------------- generation


def _products(rng: np.random.Generator) -> tuple[pd.DataFrame, _IntArray, _FloatArray]:
    """The catalogue, plus each product's category index and popularity weight."""
    names: list[str] = []
    categories: list[int] = []
    prices: list[float] = []
    for index, category in enumerate(_CATALOGUE):
        shape = tuple(len(words) for words in category.words)
        picks = rng.choice(int(np.prod(shape)), size=category.count, replace=False)
        low, high = category.price
        base = np.exp(rng.uniform(np.log(low), np.log(high), size=category.count))
        for pick, price in zip(picks, base, strict=True):
            parts = np.unravel_index(int(pick), shape)
            names.append(" ".join(w[int(i)] for w, i in zip(category.words, parts, strict=True)))
            factor = category.size_factor[int(parts[-1])] if category.size_factor else 1.0
            # Shop prices end in .49 or .99.
            prices.append(max(round(price * factor * 2) / 2 - 0.01, 0.99))
            categories.append(index)
    products = pd.DataFrame(
        {
            "product_id": _ids("P", len(names), 4),
            "name": pd.Series(names, dtype="str"),
            "category": pd.Series([_CATALOGUE[c].name for c in categories], dtype="str"),
            "price": np.round(np.array(prices), 2),
        }
    )
    popularity = rng.gamma(1.0, 1.0, size=len(names))
    return products, np.array(categories, dtype=np.int64), popularity


def _customers(
    rng: np.random.Generator, count: int, window_start: np.datetime64
) -> tuple[pd.DataFrame, _IntArray, _IntArray, _IntArray]:
    """Customers with traits, plus group index, signup and stop (in seconds after window_start)."""
    history = _HISTORY_DAYS * _DAY
    shares = _group_array("share")
    group = rng.choice(len(_GROUPS), size=count, p=shares / shares.sum()).astype(np.int64)
    is_new = group == _NEW
    is_lapsed = group == _LAPSED

    # Active window [signup, stop] in seconds since the start of the history.
    stop = np.full(count, history, dtype=np.int64)
    lapsed_stop = history - rng.integers(
        _LAPSED_STOP_DAYS[0] * _DAY, _LAPSED_STOP_DAYS[1] * _DAY, count
    )
    stop = np.where(is_lapsed, lapsed_stop, stop)
    u = rng.random(count)
    established = (u * (history - _ESTABLISHED_MIN_DAYS * _DAY)).astype(np.int64)
    lapsed_signup = (u * (lapsed_stop - 60 * _DAY)).astype(np.int64)
    new_signup = history - _NEW_DAYS * _DAY + (u * (_NEW_DAYS - 1) * _DAY).astype(np.int64)
    signup = np.where(is_new, new_signup, np.where(is_lapsed, lapsed_signup, established))

    # Names, e-mail addresses (unique through a permuted number), countries.
    gender = rng.choice(len(_GENDERS), size=count, p=_GENDER_P)
    female = np.array(_FEMALE)[rng.integers(0, len(_FEMALE), count)]
    male = np.array(_MALE)[rng.integers(0, len(_MALE), count)]
    either = rng.random(count) < 0.5
    first = np.where((gender == 0) | ((gender == 2) & either), female, male)
    last = np.array(_LAST)[rng.integers(0, len(_LAST), count)]
    first_s = pd.Series(first, dtype="str")
    last_s = pd.Series(last, dtype="str")
    slugs = {name: _slug(name) for name in (*_FEMALE, *_MALE, *_LAST)}
    number = pd.Series(rng.permutation(count) + 1).astype(str)
    email = first_s.map(slugs) + "." + last_s.map(slugs) + number + "@example.com"
    country_p = np.array([c[2] for c in _COUNTRIES])
    country = rng.choice(len(_COUNTRIES), size=count, p=country_p / country_p.sum())

    age = np.clip(np.rint(rng.normal(_group_array("age_mean")[group], 11.0)), 18, 85)
    log_income = np.log(_group_array("income_median")[group]) + 0.01 * (age - 40)
    income = np.round(np.exp(rng.normal(log_income, 0.45)), -2)
    income[rng.random(count) < _MISSING_INCOME] = np.nan
    children = np.minimum(rng.poisson(_group_array("children_mean")[group]), 3)

    customers = pd.DataFrame(
        {
            "customer_id": _ids("C", count, 6),
            "email": email.astype("str"),
            "first_name": first_s,
            "last_name": last_s,
            "country": pd.Series(np.array([c[0] for c in _COUNTRIES])[country], dtype="str"),
            "timezone": pd.Series(np.array([c[1] for c in _COUNTRIES])[country], dtype="str"),
            "signup_at": window_start + signup.astype("timedelta64[s]"),
            "age": age.astype(np.int64),
            "gender": pd.Series(np.array(_GENDERS)[gender], dtype="str"),
            "income": income,
            "children": children.astype(np.int64),
            "latent_group": pd.Series(np.array(_GROUP_NAMES)[group], dtype="str"),
        }
    )
    customers["signup_at"] = customers["signup_at"].astype("datetime64[ns]")
    return customers, group, signup, stop


def generate_demo_shop(customers: int, seed: int, end: datetime) -> ShopData:
    """Generate the demo shop: ``customers`` customers, their orders and the product catalogue.

    :param customers: number of customers (at least 1); about 10 order lines each.
    :param seed: the only source of randomness; the same arguments give identical frames.
    :param end: the last moment of the history, tz-naive UTC (an aware value is converted to UTC).
        Signups and orders fall in the two years before it.
    :return: customers (standard columns, then ``age``, ``gender``, ``income``, ``children`` and
        ``latent_group``), products and transactions, sorted by ``invoiced_at``.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if end.tzinfo is not None:
        end = end.astimezone(UTC).replace(tzinfo=None)
    rng = np.random.default_rng(seed)
    end64 = np.datetime64(pd.Timestamp(end).as_unit("ns").value, "ns")
    window_start = end64 - np.timedelta64(_HISTORY_DAYS * _DAY, "s")

    products, product_category, popularity = _products(rng)
    people, group, signup, stop = _customers(rng, customers, window_start)

    # Orders per customer: Poisson around a gamma-distributed personal rate over the active window.
    mean_rate = _group_array("orders_per_year")[group]
    rate = rng.gamma(4.0, 1.0, customers) * mean_rate / 4.0
    years = (stop - signup) / (365.25 * _DAY)
    n_orders = np.maximum(rng.poisson(rate * years), 1)
    n_orders = np.where(group == _NEW, 1 + (rng.random(customers) < 0.35), n_orders)

    # Order times, uniform over each customer's active window; invoices numbered chronologically.
    order_customer = np.repeat(np.arange(customers, dtype=np.int64), n_orders)
    offset = (rng.random(len(order_customer)) * (stop - signup)[order_customer]).astype(np.int64)
    order_time = signup[order_customer] + offset
    chronological = np.argsort(order_time, kind="stable")
    order_customer = order_customer[chronological]
    order_time = order_time[chronological]
    order_group = group[order_customer]

    # Lines: category by the group's taste, product by popularity within the category.
    n_lines = 1 + _draw_by_group(rng, _group_array("lines"), order_group)
    line_order = np.repeat(np.arange(len(order_customer), dtype=np.int64), n_lines)
    line_group = order_group[line_order]
    category = _draw_by_group(rng, _group_array("categories"), line_group)
    # Cumulative popularity within each category, shifted by the category index, so one
    # searchsorted over "category + u" picks a product of that category.
    within = np.zeros(len(popularity))
    for c in range(len(_CATALOGUE)):
        members = product_category == c
        within[members] = np.cumsum(popularity[members]) / popularity[members].sum()
    product = np.searchsorted(product_category + within, category + rng.random(len(category)))
    product = np.minimum(product, len(popularity) - 1)
    # Orders hold distinct products: drop a line that repeats an earlier line of its order.
    repeat = np.zeros(len(product), dtype=bool)
    for lag in (1, 2, 3):
        same = (line_order[lag:] == line_order[:-lag]) & (product[lag:] == product[:-lag])
        repeat[lag:] |= same
    keep = ~repeat
    line_order, line_group, product = line_order[keep], line_group[keep], product[keep]

    quantity = 1 + rng.poisson(_group_array("extra_quantity")[line_group])
    discounted = rng.random(len(product)) < _group_array("discount_rate")[line_group]
    depth = rng.choice(np.array([0.10, 0.15, 0.20, 0.25]), size=len(product))
    list_price = products["price"].to_numpy(dtype=np.float64)[product]
    unit_price = np.round(np.where(discounted, list_price * (1.0 - depth), list_price), 2)

    invoices = _ids("INV", len(order_customer), 7)
    transactions = pd.DataFrame(
        {
            "invoice": _take(invoices, line_order),
            "customer_id": _take(people["customer_id"], order_customer[line_order]),
            "product_id": _take(products["product_id"], product),
            "quantity": quantity.astype(np.int64),
            "unit_price": unit_price,
            "invoiced_at": window_start + order_time[line_order].astype("timedelta64[s]"),
        }
    )
    transactions["invoiced_at"] = transactions["invoiced_at"].astype("datetime64[ns]")
    return ShopData(
        customers=people[[*CUSTOMER_COLUMNS, *_TRAITS]],
        products=products[list(PRODUCT_COLUMNS)],
        transactions=transactions[list(TRANSACTION_COLUMNS)],
        events=abandoned_carts(people["customer_id"], group != _LAPSED, end64, seed),
    )


# ------------------------------------------------------------------------------ response model


def true_probability(group: str, variant: str | None) -> float:
    """The true 14-day conversion probability of a customer of ``group`` sent ``variant``.

    ``variant=None`` means no message (a holdout): ``HOLDOUT_FACTOR * TRUE_CONVERSION_BASE[group]``.
    Otherwise ``TRUE_CONVERSION_BASE[group] + TRUE_VARIANT_LIFT[variant] * m``, where ``m`` is
    ``TRUE_LIFT_MULTIPLIER[(variant, group)]`` if present, else 1: the ``discount`` lift is 0.06
    (tripled) for bargain hunters and 0 for champions. A variant not in ``TRUE_VARIANT_LIFT`` has
    lift 0 (it behaves like ``control``). Raises :class:`ValueError` for an unknown group.
    """
    if group not in TRUE_CONVERSION_BASE:
        raise ValueError(
            f"unknown latent group {group!r}; expected one of {', '.join(TRUE_CONVERSION_BASE)}"
        )
    base = TRUE_CONVERSION_BASE[group]
    if variant is None:
        return HOLDOUT_FACTOR * base
    lift = TRUE_VARIANT_LIFT.get(variant, 0.0) * TRUE_LIFT_MULTIPLIER.get((variant, group), 1.0)
    return min(max(base + lift, 0.0), 1.0)


def response_probability(customers: pd.DataFrame, variant: str | None) -> _FloatArray:
    """Per-row true conversion probability for ``customers`` sent ``variant`` (None = holdout).

    Reads only the ``latent_group`` column; the rule is :func:`true_probability`'s (baseline by
    group, the variant's absolute lift, tripled for bargain hunters and zero for champions under
    ``discount``, unknown variants lift 0, no message = 0.8 x baseline). Raises :class:`ValueError`
    if the column is missing or holds an unknown group.
    """
    if "latent_group" not in customers.columns:
        raise ValueError("customers need a 'latent_group' column (only the demo source has one)")
    table = {group: true_probability(group, variant) for group in TRUE_CONVERSION_BASE}
    probability = np.asarray(customers["latent_group"].map(table), dtype=np.float64)
    unknown = np.isnan(probability)
    if unknown.any():
        names = sorted({str(g) for g in customers["latent_group"][unknown]})
        raise ValueError(
            f"unknown latent group(s) {', '.join(names)}; "
            f"expected one of {', '.join(TRUE_CONVERSION_BASE)}"
        )
    return probability


def simulate_conversions(
    customers: pd.DataFrame, variant: str | None, rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    """One Bernoulli draw per row from :func:`response_probability`: did the customer convert?"""
    probability = response_probability(customers, variant)
    return rng.random(len(probability)) < probability
