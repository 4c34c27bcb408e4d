"""Time ``campaign report`` on a large experiment: 10M exposures and 500k conversions.

    python -m benchmarks.experiments
    python -m benchmarks.experiments --exposures 1000000 --store postgresql+psycopg://...

The store is filled by SQL (generating 10M rows through Python would time the loader, not the
report): exposures over 14 days in three arms (45% control, 45% discount, 10% holdout), one
conversion for every 20th exposure, up to 20 days later (so some fall outside the 14-day window),
and a purchase 30 days before exposure for every 20th customer (the CUPED covariate, which
``record_exposures`` fixes on each exposure when it is recorded: the fill writes it directly).
Then the report is timed as ``campaign report`` builds it: aggregation in the database,
statistics, JSON.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from campaigns.experiments import aggregate, analyse, to_json
from campaigns.experiments.spec import HOLDOUT, ExperimentSpec
from store.engine import open_store

SPEC = ExperimentSpec(
    name="bench",
    salt="bench",
    control="control",
    variants=("control", "discount"),
    shares={"control": 0.45, "discount": 0.45, HOLDOUT: 0.1},
    holdout=0.1,
    conversions="tracked",
)


def _fill_sqlite(engine: Engine, exposures: int) -> None:
    day = 86_400
    with engine.begin() as connection:
        connection.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
                "INSERT INTO exposure (experiment, variant, customer_id, exposed_at, covariate) "
                "SELECT 'bench', CASE WHEN abs(random()) % 20 < 2 THEN 'holdout' "
                "WHEN abs(random()) % 18 < 9 THEN 'control' ELSE 'discount' END, 'C' || i, "
                "strftime('%Y-%m-%d %H:%M:%f', '2026-10-01', '+' || (i * 7919 % :span) || "
                "' seconds') || '000', CASE WHEN (i + 1) % 20 = 3 THEN ((i + 1) % 53) + 1.0 "
                "ELSE 0 END FROM n"
            ),
            {"count": exposures - 1, "span": 14 * day},
        )
        # One conversion per 20 exposures; the discount arm converts a little more often.
        connection.execute(
            text(
                "INSERT INTO conversion (customer_id, converted_at, value, source, kind) "
                "SELECT customer_id, strftime('%Y-%m-%d %H:%M:%f', exposed_at, '+' || "
                "(id * 104729 % :span) || ' seconds') || '000', (id % 97) + 0.5, 'tracking', "
                "'conversion' FROM exposure WHERE id % 20 = 0 OR (variant = 'discount' AND "
                "id % 173 = 0)"
            ),
            {"span": 20 * day},
        )
        connection.execute(
            text(
                "INSERT INTO transaction_line (invoice, customer_id, product_id, quantity, "
                "unit_price, invoiced_at) SELECT 'I' || id, customer_id, 'P1', 1, (id % 53) + 1.0, "
                "strftime('%Y-%m-%d %H:%M:%f', exposed_at, '-30 days') || '000' FROM exposure "
                "WHERE id % 20 = 3"
            )
        )


def _fill_postgres(engine: Engine, exposures: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO exposure (experiment, variant, customer_id, exposed_at, covariate) "
                "SELECT 'bench', CASE WHEN random() < 0.1 THEN 'holdout' "
                "WHEN random() < 0.5 THEN 'control' ELSE 'discount' END, 'C' || i, "
                "timestamp '2026-10-01' + make_interval(secs => (i::bigint * 7919) % :span), "
                "CASE WHEN (i + 1) % 20 = 3 THEN ((i + 1) % 53) + 1.0 ELSE 0 END "
                "FROM generate_series(0, :count) AS i"
            ),
            {"count": exposures - 1, "span": 14 * 86_400},
        )
        connection.execute(
            text(
                "INSERT INTO conversion (customer_id, converted_at, value, source, kind) "
                "SELECT customer_id, "
                "exposed_at + make_interval(secs => (id::bigint * 104729) % :span), "
                "(id % 97) + 0.5, 'tracking', 'conversion' FROM exposure "
                "WHERE id % 20 = 0 OR (variant = 'discount' AND id % 173 = 0)"
            ),
            {"span": 20 * 86_400},
        )
        connection.execute(
            text(
                "INSERT INTO transaction_line (invoice, customer_id, product_id, quantity, "
                "unit_price, invoiced_at) SELECT 'I' || id, customer_id, 'P1', 1, (id % 53) + 1.0, "
                "exposed_at - interval '30 days' FROM exposure WHERE id % 20 = 3"
            )
        )
        connection.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument(
        "--store", help="A store URL (default: a new SQLite file); a filled one is reused."
    )
    parser.add_argument("--repeat", type=int, default=2, help="Reports to time.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.store or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = open_store(url)
        started = time.perf_counter()
        with engine.connect() as connection:
            filled = connection.execute(
                text("SELECT COUNT(*) FROM exposure_count WHERE experiment = 'bench'")
            ).scalar_one()
        if filled:
            fill: float | None = None  # a kept store (--store) is reused as it is
        elif engine.dialect.name == "postgresql":
            _fill_postgres(engine, args.exposures)
        else:
            _fill_sqlite(engine, args.exposures)
            with engine.connect() as connection:
                # Fold the write-ahead log into the file, as SQLite does by itself after a load.
                connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        if not filled:
            fill = time.perf_counter() - started
        with engine.connect() as connection:
            exposures = connection.execute(text("SELECT COUNT(*) FROM exposure")).scalar_one()
        with engine.connect() as connection:
            conversions = connection.execute(text("SELECT COUNT(*) FROM conversion")).scalar_one()

        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            data = aggregate(engine, SPEC)
            aggregated = time.perf_counter() - started
            started = time.perf_counter()
            analysis = analyse(data, SPEC)
            to_json(analysis)
            timings.append((aggregated, time.perf_counter() - started))
        engine.dispose()

    table = Table(title=f"campaign report on {engine.dialect.name}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    what = f"{exposures:,} exposures, {conversions:,} conversions"
    table.add_row(f"fill the store ({what})", "reused" if fill is None else f"{fill:.1f}")
    for index, (aggregated, computed) in enumerate(timings, start=1):
        table.add_row(f"report {index}: aggregate in the database", f"{aggregated:.2f}")
        table.add_row(f"report {index}: statistics, verdict and JSON", f"{computed:.2f}")
        table.add_row(f"report {index}: total", f"{aggregated + computed:.2f}")
    console = Console()
    console.print(table)
    console.print(
        f"Peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    console.print(f"Verdict: {analysis.verdict}")


if __name__ == "__main__":
    main()
