"""Time the ways to the per-customer features on a demo shop in SQLite (or PostgreSQL).

    python -m benchmarks.features --customers 100000
    python -m benchmarks.features --customers 100000 --store postgresql+psycopg://...

Each figure is also given as a ratio to the plain baseline measured in the same process: a plain
``GROUP BY customer_id`` (count, sum, max) over the same transaction lines, every row fetched.
The ways: rebuilding the aggregates with ``GROUP BY`` in the database; building them with numpy
from the lines still in memory after a load and writing them (what the first run does); folding
in 1% new lines (what a later run does); reading them back and deriving recency and the rest at
the run's time; and, for comparison, the pandas features over the whole log read back from the
store (what every run used to do).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from segmentation.features import rfm_features, rfm_from_aggregates
from store.bulk import insert_frame
from store.engine import connect, open_store
from store.features import FreshLines, feature_rows, forget_features, refresh_features
from store.migrate import drop_everything
from store.shop import load_shop, read_transactions, save_shop
from store.sources.demo import generate_demo_shop

AT = datetime(2026, 11, 23, 12)
PLAIN = (
    "SELECT customer_id, count(*), sum(quantity * unit_price), max(invoiced_at) "
    "FROM transaction_line GROUP BY customer_id"
)


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--store", help="store URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.store or f"sqlite:///{Path(folder) / 'features.db'}"
        if args.store:
            drop_everything(connect(url))
        engine = open_store(url)
        shop = generate_demo_shop(args.customers, 7, datetime(2026, 11, 20))
        save_shop(engine, shop, facts={"loaded_at": "bench"})
        lines = len(shop.transactions)

        def plain() -> None:
            with engine.connect() as connection:
                connection.execute(text(PLAIN)).fetchall()

        def forget() -> None:
            with engine.begin() as connection:
                forget_features(connection)

        baseline = timed(plain)
        rows: list[tuple[str, float]] = []
        forget()
        rows.append(
            (
                "GROUP BY rebuild in the database",
                timed(lambda: refresh_features(engine, False)),
            )
        )
        forget()
        rows.append(
            (
                "the same with spend per category",
                timed(lambda: refresh_features(engine, True)),
            )
        )
        forget()
        fresh = FreshLines(shop.transactions, shop.products)
        rows.append(
            (
                "numpy build from the loaded lines + write",
                timed(lambda: refresh_features(engine, False, fresh)),
            )
        )
        rng = np.random.default_rng(1)
        buyers = rng.choice(shop.customers["customer_id"].to_numpy(), args.customers // 100)
        new = pd.DataFrame(
            {
                "invoice": [f"new-{i}" for i in range(len(buyers))],
                "customer_id": buyers,
                "product_id": shop.products["product_id"].iloc[0],
                "quantity": 1,
                "unit_price": 4.5,
                "invoiced_at": AT - timedelta(hours=1),
            }
        )
        insert_frame(engine, "transaction_line", new)
        rows.append(
            (
                f"fold {len(new):,} new lines (1% of customers)",
                timed(lambda: refresh_features(engine, False)),
            )
        )
        rows.append(("refresh with nothing new", timed(lambda: refresh_features(engine, False))))
        customers = load_shop(engine, lazy=True).customers
        rows.append(
            (
                "read the aggregates + recency etc. at the run's time",
                timed(lambda: rfm_from_aggregates(feature_rows(engine), customers, AT)),
            )
        )
        stored = {}
        rows.append(
            (
                "read the whole log back (what runs did)",
                timed(lambda: stored.update(t=read_transactions(engine))),
            )
        )
        rows.append(
            ("pandas features over it", timed(lambda: rfm_features(stored["t"], customers, AT)))
        )
        engine.dispose()
    backend = "PostgreSQL" if args.store else "SQLite"
    print(f"{args.customers:,} customers, {lines:,} lines, {backend}")
    print(f"{'step':<56} {'seconds':>8} {'x plain':>8}")
    print("-" * 74)
    print(f"{'plain GROUP BY customer_id (count, sum, max)':<56} {baseline:>8.2f} {1.0:>8.2f}")
    for name, seconds in rows:
        print(f"{name:<56} {seconds:>8.2f} {seconds / baseline:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
