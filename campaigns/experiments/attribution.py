"""Aggregate an experiment in the database into per-arm sufficient statistics.

A unit is an exposure (one per customer and experiment). A conversion counts for an exposure when
it happens at or after the exposure and before the attribution window ends: from tracked events
(``conversion`` rows of kind ``conversion``) or from the transaction log (one per invoice, valued at
the invoice total), as the experiment says. Only the first conversion of an exposure counts for the
rate; all their values sum into its revenue. Clicks come from tracked ``click`` rows, attributed
the same way. The CUPED covariate (the customer's spend in the ``covariate_days`` before exposure)
is fixed on each exposure when it is recorded.

Everything is summed in SQL. Units without a conversion contribute zero to every outcome sum, so
the database only joins the (few) exposures that have events; exposures and covariate sums per arm
and day come from the ``exposure_count`` rollup that triggers keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from campaigns.experiments.cuped import CovariateMoments
from campaigns.experiments.exposures import DeliveryCounts, time_value
from campaigns.experiments.ratio import RatioMoments
from campaigns.experiments.spec import ExperimentSpec
from campaigns.experiments.stats import Moments, Proportion


@dataclass(frozen=True)
class ArmData:
    """Sufficient statistics of one arm."""

    variant: str
    exposures: int
    clicks: int
    conversions: int
    revenue: Moments
    #: Conversion (0/1) and revenue against pre-period spend, for CUPED; None without a covariate.
    cuped_conversion: CovariateMoments | None = None
    cuped_revenue: CovariateMoments | None = None
    #: Units that clicked and converted (for orders per clicker).
    clicked_conversions: int = 0

    @property
    def orders_per_clicker(self) -> RatioMoments:
        """Conversions of clicking units over clicking units, per unit (0/1 each)."""
        both, clicks = float(self.clicked_conversions), float(self.clicks)
        return RatioMoments(self.exposures, both, clicks, both, clicks, both)

    def metric(self, name: str) -> Proportion:
        """The arm's proportion for ``conversion`` or ``ctr``."""
        hits = self.clicks if name == "ctr" else self.conversions
        return Proportion(self.exposures, hits)


@dataclass(frozen=True)
class DailyCounts:
    """Cumulative units, clicks and conversions of one arm up to and including ``day`` (by
    exposure day)."""

    day: date
    variant: str
    exposures: int
    clicks: int
    conversions: int


@dataclass(frozen=True)
class ExperimentData:
    """What the database says about one experiment."""

    experiment: str
    arms: dict[str, ArmData]
    daily: tuple[DailyCounts, ...] = field(default_factory=tuple)
    #: Guardrail metric -> arm -> units with such an event (see :mod:`.guardrails`).
    guardrails: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Arm -> what happened to its messages; None when no campaign sends the experiment.
    delivery: dict[str, DeliveryCounts] | None = None


def _dialect(engine: Engine) -> dict[str, str]:
    """The few expressions that differ between SQLite (text times) and PostgreSQL."""
    if engine.dialect.name == "postgresql":
        return {
            "before_end": "ev.at < e.exposed_at + make_interval(secs => :window)",
            "day": "to_char(e.exposed_at, 'YYYY-MM-DD')",
            "lookup": "",
        }
    return {
        "before_end": "julianday(ev.at) < julianday(e.exposed_at) + :window / 86400.0",
        "day": "substr(e.exposed_at, 1, 10)",
        # SQLite would take the unique index and then read each row from the table.
        "lookup": "INDEXED BY ix_exposure_lookup",
    }


def window_end(engine: Engine) -> str:
    """SQL: the event ``ev`` (its time in ``converted_at``) is before exposure ``e``'s window
    ends (``:window`` seconds after exposure)."""
    if engine.dialect.name == "postgresql":
        return "ev.converted_at < e.exposed_at + make_interval(secs => :window)"
    return "julianday(ev.converted_at) < julianday(e.exposed_at) + :window / 86400.0"


def _events(source: str) -> str:
    if source == "transactions":
        return (
            "SELECT customer_id, MIN(invoiced_at) AS at, SUM(quantity * unit_price) AS value "
            "FROM transaction_line WHERE invoiced_at >= :start AND invoiced_at < :stop "
            "GROUP BY customer_id, invoice"
        )
    return (
        "SELECT customer_id, converted_at AS at, value FROM conversion "
        "WHERE kind = 'conversion' AND converted_at >= :start AND converted_at < :stop"
    )


# Clicks imported from files, and people's clicks through the endpoint (a machine's, such as a
# link scanner's, are not a person's interest).
_CLICKS = (
    "SELECT customer_id, converted_at AS at, value FROM conversion "
    "WHERE kind = 'click' AND converted_at >= :start AND converted_at < :stop UNION ALL "
    "SELECT customer_id, occurred_at AS at, 0.0 AS value FROM engagement_event "
    "WHERE kind = 'click' AND NOT machine AND customer_id IS NOT NULL "
    "AND occurred_at >= :start AND occurred_at < :stop"
)

# One row per exposure with at least one event in its window. The events drive the join
# (CROSS JOIN fixes SQLite's join order; PostgreSQL plans it itself): a few hundred thousand
# conversions look up their exposure by (experiment, customer_id), instead of millions of
# exposures each probing for conversions. Grouping by the exposure's primary key lets both
# databases read its variant and day without grouping by them.
_HITS = (
    "INSERT INTO {table} (id, variant, day, x, v) "
    "SELECT e.id, e.variant, {day}, e.covariate, SUM(ev.value) FROM ({events}) ev "
    "CROSS JOIN exposure e {lookup} "
    "WHERE e.experiment = :e AND e.customer_id = ev.customer_id AND ev.at >= e.exposed_at "
    "AND {before_end} GROUP BY e.id"
)
# Keyed by exposure id (SQLite's rowid): rows arrive in id order and are joined on it.
_TEMP_TABLES = {
    "exp_conv": "id INTEGER PRIMARY KEY, variant TEXT, day TEXT, x DOUBLE PRECISION, "
    "v DOUBLE PRECISION",
    "exp_click": "id INTEGER PRIMARY KEY, variant TEXT, day TEXT, x DOUBLE PRECISION, "
    "v DOUBLE PRECISION",
}


def aggregate(engine: Engine, spec: ExperimentSpec) -> ExperimentData:
    """Per-arm sufficient statistics of ``spec``'s experiment, summed in the database.

    Exposures and their covariate sums come from ``exposure_count`` (kept by triggers); the
    events in each exposure's window are collected once into temporary tables, which every other
    sum then reads.
    """
    with engine.begin() as connection:
        counts = connection.execute(
            text(
                "SELECT variant, day, exposures, covariate_sum, covariate_sq FROM exposure_count "
                "WHERE experiment = :e AND exposures > 0 ORDER BY day, variant"
            ),
            {"e": spec.name},
        ).all()
        if not counts:
            return ExperimentData(spec.name, {})
        first = datetime.fromisoformat(min(str(row[1]) for row in counts))
        last = datetime.fromisoformat(max(str(row[1]) for row in counts)) + timedelta(days=1)
        params: dict[str, Any] = {
            "e": spec.name,
            "window": spec.window.total_seconds(),
            "start": time_value(engine, first),
            "stop": time_value(engine, last + spec.window),
        }
        sql = _dialect(engine)
        if engine.dialect.name == "sqlite":
            # Temporary tables and sorts in memory, not in a temporary file; for this connection.
            connection.execute(text("PRAGMA temp_store = MEMORY"))
        for table, columns in _TEMP_TABLES.items():
            connection.execute(text(f"CREATE TEMPORARY TABLE {table} ({columns})"))
        try:
            events = _events(spec.conversions)
            connection.execute(text(_HITS.format(table="exp_conv", events=events, **sql)), params)
            connection.execute(text(_HITS.format(table="exp_click", events=_CLICKS, **sql)), params)
            by_day = connection.execute(
                text(
                    "SELECT 'conv', variant, day, COUNT(*), SUM(v), SUM(v * v), SUM(x), "
                    "SUM(x * v) FROM exp_conv GROUP BY variant, day UNION ALL "
                    "SELECT 'click', variant, day, COUNT(*), 0, 0, 0, 0 FROM exp_click "
                    "GROUP BY variant, day UNION ALL "
                    "SELECT 'both', c.variant, c.day, COUNT(*), 0, 0, 0, 0 FROM exp_conv c "
                    "JOIN exp_click k ON k.id = c.id GROUP BY c.variant, c.day"
                )
            ).all()
        finally:
            for table in _TEMP_TABLES:
                connection.execute(text(f"DROP TABLE {table}"))
    return _assemble(spec, counts, by_day)


# Per (day, arm): exposures, clicks, conversions, revenue, revenue^2, covariate, covariate^2,
# covariate x converted, covariate x revenue, clicked and converted.
_FIELDS = 10


def _assemble(spec: ExperimentSpec, counts: Any, by_day: Any) -> ExperimentData:
    """Per-arm totals and the cumulative daily series from the grouped rows."""
    daily: dict[tuple[str, str], list[float]] = {}
    for variant, day, n, x, xx in counts:
        row = daily.setdefault((str(day), variant), [0.0] * _FIELDS)
        row[0] += int(n)
        row[5] += float(x or 0)
        row[6] += float(xx or 0)
    for kind, variant, day, n, total, total_sq, x, xv in by_day:
        row = daily.setdefault((str(day), variant), [0.0] * _FIELDS)
        if kind == "click":
            row[1] += int(n)
        elif kind == "both":
            row[9] += int(n)
        else:
            row[2] += int(n)
            row[3] += float(total or 0)
            row[4] += float(total_sq or 0)
            row[7] += float(x or 0)
            row[8] += float(xv or 0)
    running: dict[str, list[float]] = {}
    series = []
    for day, variant in sorted(daily):
        totals = running.setdefault(variant, [0.0] * _FIELDS)
        for i, value in enumerate(daily[(day, variant)]):
            totals[i] += value
        series.append(
            DailyCounts(
                date.fromisoformat(day), variant, int(totals[0]), int(totals[1]), int(totals[2])
            )
        )
    arms = {}
    cuped = spec.covariate_days > 0
    for variant, (n, clicks, k, total, total_sq, x, xx, xk, xv, both) in running.items():
        units = int(n)
        arms[variant] = ArmData(
            variant=variant,
            exposures=units,
            clicks=int(clicks),
            conversions=int(k),
            revenue=Moments(units, total, total_sq),
            cuped_conversion=CovariateMoments(units, k, k, x, xx, xk) if cuped else None,
            cuped_revenue=CovariateMoments(units, total, total_sq, x, xx, xv) if cuped else None,
            clicked_conversions=int(both),
        )
    return ExperimentData(spec.name, arms, tuple(series))
