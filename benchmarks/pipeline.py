"""Time each stage of ``campaign run`` on a generated demo shop, with peak memory.

    python -m benchmarks.pipeline --customers 100000
    python -m benchmarks.pipeline --customers 1000000 --store postgresql+psycopg://...

The run goes through the same library call as ``campaign run`` (``run_campaigns``); stage times
come from its progress callback, so nothing here re-implements a stage. Three runs are timed: the
first fills an empty store from the demo source; the second is an idle run, at a time before
which the first run's watermark says no campaign can fire (no new data, no schedule window, no
per-customer trigger: ``campaigns/idle.py``), reported as a ratio to the first run; the third, an
hour after the first, plans again (with a million customers, some reach the inactive trigger's 90
days every few minutes), the steady state of an hourly cron job (``--no-hour-later`` skips it).

``--due-share 0.01`` adds a run with 1% of customers due: before it, that share of customers
abandon a cart (events in the store, the demo's event trigger), and a few new transaction lines
arrive. It runs in a fresh process (so that its peak memory is its own), beside the plain
baseline measured in that process: a plain ``GROUP BY customer_id`` (count, sum, max) over the
same transaction lines. The first run's "Saving to store" is also put beside a plain
``executemany`` of the same transaction rows into a bare table in a new SQLite file (one
transaction, no index), measured in the same process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlmodel import Session, col, select

from campaigns.config import load_config
from campaigns.idle import Watermark
from campaigns.run import run_campaigns
from campaigns.summary import RunResult
from store.bulk import insert_frame, prepare_frame
from store.engine import connect, opened_store
from store.migrate import drop_everything
from store.tables import CampaignRun

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)


def peak_rss_mib() -> float:
    """The process's peak resident memory so far, in MiB: ``VmHWM`` (Linux, a process's own even
    when started by another; ``ru_maxrss`` keeps the parent's across ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class StageClock:
    """A progress callback that records when each stage starts, and peak memory at its end."""

    stages: list[tuple[str, float, float]] = field(default_factory=list)  # name, seconds, MiB
    _name: str | None = None
    _start: float = 0.0
    _items: dict[str, int] = field(default_factory=dict)

    def __call__(self, stage: str, advance: int, total: int | None) -> None:
        if stage != self._name:
            self.close()
            self._name, self._start = stage, time.perf_counter()
            if total:
                self._items[stage] = total

    def close(self) -> None:
        if self._name is not None:
            self.stages.append((self._name, time.perf_counter() - self._start, peak_rss_mib()))
            self._name = None


def workspace(folder: Path, customers: int, store: str | None) -> Path:
    """A copy of the repository's demo config at the requested size and store."""
    text = (REPO / "config.toml").read_text()
    text = text.replace("customers = 5000", f"customers = {customers}\nend = 2026-11-20T00:00:00")
    text = text.replace('templates = "templates"', f'templates = "{REPO / "templates"}"')
    url = store or f"sqlite:///{folder / 'bench.db'}"
    text = text.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{url}"')
    path = folder / "config.toml"
    path.write_text(text)
    return path


def timed_run(config_path: Path, at: datetime) -> tuple[StageClock, RunResult, float]:
    clock = StageClock()
    start = time.perf_counter()
    result = run_campaigns(load_config(config_path), at=at, progress=clock)
    clock.close()
    return clock, result, time.perf_counter() - start


def table(title: str, clock: StageClock, total: float, result: RunResult) -> str:
    lines = [
        title,
        f"{'stage':<18} {'seconds':>9} {'peak RSS MiB':>13} {'items':>11}",
        "-" * 54,
    ]
    for name, seconds, mib in clock.stages:
        items = clock._items.get(name)
        lines.append(
            f"{name:<18} {seconds:>9.2f} {mib:>13,.0f} {items or '':>11}".rstrip()
            if not items
            else f"{name:<18} {seconds:>9.2f} {mib:>13,.0f} {items:>11,}"
        )
    lines.append("-" * 54)
    lines.append(f"{'total':<18} {total:>9.2f} {peak_rss_mib():>13,.0f}")
    totals = result.totals
    lines.append(
        f"new messages: {totals.planned:,}; sent: {totals.sent:,}; deferred: {totals.deferred:,}"
    )
    if result.nothing_due is not None:
        lines.append(result.nothing_due)
    return "\n".join(lines)


def idle_time(config_path: Path, after: datetime) -> datetime | None:
    """A time after ``after`` before which the last run's watermark says nothing can fire (at most
    an hour later); None when it cannot tell."""
    config = load_config(config_path)
    with opened_store(config.store.url, config.root) as engine, Session(engine) as session:
        last = session.exec(select(CampaignRun).order_by(col(CampaignRun.id).desc())).first()
    watermark = Watermark.from_json(last.watermark if last is not None else None)
    if watermark is None or watermark.quiet_until is None or watermark.quiet_until <= after:
        return None
    return after + min((watermark.quiet_until - after) / 2, timedelta(hours=1))


def reset(url: str) -> None:
    """Empty a PostgreSQL benchmark database (a SQLite one is a new temporary file)."""
    engine = connect(url)
    drop_everything(engine)
    engine.dispose()


#: A plain GROUP BY over the transaction lines: the baseline of the features stage.
PLAIN_GROUP_BY = (
    "SELECT customer_id, count(*), sum(quantity * unit_price), max(invoiced_at) "
    "FROM transaction_line GROUP BY customer_id"
)


def plain_group_by(url: str) -> float:
    """Seconds for :data:`PLAIN_GROUP_BY`, every row fetched."""
    engine = connect(url)
    start = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.execute(text(PLAIN_GROUP_BY)).fetchall()
    seconds = time.perf_counter() - start
    engine.dispose()
    assert rows
    return seconds


def plain_executemany(url: str, folder: Path) -> tuple[float, int]:
    """Seconds to write the store's transaction rows, as the load prepares them, with plain
    ``executemany`` calls into a bare table of a new SQLite file (one transaction, no index,
    chunks of 500,000 rows as the store reads them); reading and preparing them is not timed."""
    engine = connect(url)
    path = folder / "bare.db"
    bare = sqlite3.connect(path, isolation_level=None)
    bare.execute(
        "CREATE TABLE bare (invoice TEXT, customer_id TEXT, product_id TEXT, "
        "quantity INTEGER, unit_price REAL, invoiced_at TEXT)"
    )
    seconds, count = 0.0, 0
    bare.execute("BEGIN")
    with engine.connect() as connection:
        query = text(
            "SELECT invoice, customer_id, product_id, quantity, unit_price, invoiced_at "
            "FROM transaction_line ORDER BY id"
        )
        for chunk in pd.read_sql_query(query, connection, chunksize=500_000):
            chunk["invoiced_at"] = pd.to_datetime(chunk["invoiced_at"], format="ISO8601")
            rows = list(prepare_frame(chunk).itertuples(index=False, name=None))
            start = time.perf_counter()
            bare.executemany("INSERT INTO bare VALUES (?, ?, ?, ?, ?, ?)", rows)
            seconds += time.perf_counter() - start
            count += len(rows)
    start = time.perf_counter()
    bare.execute("COMMIT")
    seconds += time.perf_counter() - start
    bare.close()
    engine.dispose()
    path.unlink()
    return seconds, count


def add_due_customers(config_path: Path, share: float, at: datetime) -> tuple[int, int]:
    """``share`` of the customers abandon a cart an hour before ``at``; one in ten of them also
    buys (a new invoice line). Returns the events and lines added."""
    config = load_config(config_path)
    with opened_store(config.store.url, config.root) as engine:
        with engine.connect() as connection:
            ids = [r[0] for r in connection.execute(text("SELECT customer_id FROM customer"))]
            product = connection.execute(text("SELECT min(product_id) FROM product")).scalar()
        rng = np.random.default_rng(14)
        chosen = rng.choice(np.asarray(ids, dtype=object), max(1, int(len(ids) * share)), False)
        when = at - timedelta(hours=1)
        events = pd.DataFrame(
            {"customer_id": chosen, "event": "cart_abandoned", "occurred_at": when}
        )
        buyers = chosen[::10]
        lines = pd.DataFrame(
            {
                "invoice": [f"due-{i}" for i in range(len(buyers))],
                "customer_id": buyers,
                "product_id": product,
                "quantity": 1,
                "unit_price": 9.5,
                "invoiced_at": when,
            }
        )
        insert_frame(engine, "customer_event", events)
        insert_frame(engine, "transaction_line", lines)
    return len(events), len(lines)


def _due_run(config_path: Path, at: datetime, url: str) -> str:
    """The due run and its baseline, in a fresh process; returns the report."""
    clock, result, total = timed_run(config_path, at)
    report = table(f"Run at {at:%H:%M} with customers due (fresh process)", clock, total, result)
    features = next((s for s in clock.stages if s[0] == "Building features"), None)
    baseline = plain_group_by(url)
    lines = [report, f"plain GROUP BY over the same lines (same process): {baseline:.2f} s"]
    if features is not None:
        lines.append(
            f"features stage / plain GROUP BY: {features[1] / baseline:.2f} "
            f"({features[1]:.2f} s; peak RSS at its end {features[2]:,.0f} MiB)"
        )
    lines.append(f"due run / plain GROUP BY: {total / baseline:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--store", help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--no-hour-later", action="store_true", help="skip the third run")
    parser.add_argument(
        "--due-share",
        type=float,
        default=0.0,
        help="add a run with this share of customers due (an event), e.g. 0.01",
    )
    args = parser.parse_args(argv)
    if args.store:
        reset(args.store)
    with tempfile.TemporaryDirectory() as folder:
        config = workspace(Path(folder), args.customers, args.store)
        backend = "PostgreSQL" if args.store else "SQLite"
        first, result, first_total = timed_run(config, AT)
        print(
            table(f"First run: {args.customers:,} customers, {backend}", first, first_total, result)
        )
        url = args.store or f"sqlite:///{Path(folder) / 'bench.db'}"
        saving = next((s[1] for s in first.stages if s[0] == "Saving to store"), None)
        if saving is not None:
            bare, rows = plain_executemany(url, Path(folder))
            print(
                f"plain executemany of the {rows:,} transaction rows into a bare SQLite table "
                f"(same process): {bare:.2f} s; saving to store / plain: {saving / bare:.2f}"
            )
        print()
        quiet = idle_time(config, AT)
        if quiet is None:
            print("No idle run: the first run's watermark cannot tell when nothing is due.")
        else:
            idle, result, total = timed_run(config, quiet)
            print(table(f"Idle run at {quiet:%H:%M:%S} (nothing due)", idle, total, result))
            print(f"idle run / first run: {total / first_total:.4f} ({first_total / total:,.0f}x)")
        if not args.no_hour_later:
            print()
            later, result, total = timed_run(config, AT + timedelta(hours=1))
            print(table("Run an hour later (store filled)", later, total, result))
        if args.due_share > 0:
            print()
            # A day later: the first run's messages no longer hold customers under the daily cap.
            due_at = AT + timedelta(days=1, minutes=90)
            events, lines = add_due_customers(config, args.due_share, due_at)
            print(f"Added {events:,} cart_abandoned events and {lines:,} transaction lines.")
            spawn = multiprocessing.get_context("spawn")
            with spawn.Pool(1) as pool:
                print(pool.apply(_due_run, (config, due_at, url)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
