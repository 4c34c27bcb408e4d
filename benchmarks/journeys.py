"""Time advancing journeys: N entries in a journey, a tenth of them due.

    python -m benchmarks.journeys --entries 100000
    python -m benchmarks.journeys --entries 1000000 --postgres postgresql+psycopg://u@host/db

A journey of three waits and a check of ``exit_when = ["converted"]`` before each step; N
entries, every tenth due at the run's time at the first wait. Timed: the run's advancing of the
due entries (``campaigns.journeys.runner._advance``: read the due entries in chunks, the exit
check, the state machine, then per chunk one transaction recording each move and moving each
entry, guarded by its move count), against the plain baseline of one SQL ``UPDATE`` moving the
same rows on an identical store. Beside it, untimed in the ratio: the wake-up that precedes it
in a run (``wake``: every waiting entry read a chunk at a time for its exit_when check, the
other nine tenths here). Memory: the Python heap's peak while advancing (tracemalloc),
which grows with the due entries (a chunk at a time), not with the whole journey.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from campaigns.compose import RunRenderBudget
from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.journeys.runner import CapCounter, JourneyRun, World, _advance, wake
from store.bulk import insert_frame, time_param
from store.engine import connect, open_store
from store.migrate import drop_everything

AT = datetime(2026, 11, 23, 12, 0)

CONFIG = """
[source]
type = "demo"
[channels.export]
type = "file"
[journeys.bench]
trigger = { type = "inactive", days = 60 }
exit_when = ["converted"]
channel = "export"
[[journeys.bench.steps]]
name = "first"
wait = "1d"
[[journeys.bench.steps]]
name = "second"
wait = "1d"
[[journeys.bench.steps]]
name = "third"
wait = "1d"
"""


def fill(engine: Engine, entries: int) -> None:
    """``entries`` active entries at the first wait; every tenth due at :data:`AT`."""
    ids = np.arange(entries)
    due = np.where(ids % 10 == 0, AT - timedelta(hours=1), AT + timedelta(hours=5))
    frame = pd.DataFrame(
        {
            "journey": "bench",
            "customer_id": [f"C{i:07d}" for i in ids],
            "entry_no": 1,
            "occasion": "inactive-since-2026-09-01",
            "status": "active",
            "step": "first",
            "step_at": AT - timedelta(days=1),
            "due_at": pd.to_datetime(due),
            "moves": 0,
            "entered_at": AT - timedelta(days=1),
        }
    )
    insert_frame(engine, "journey_entry", frame)


def world(entries: int) -> World:
    customers = pd.DataFrame(
        {"customer_id": [f"C{i:07d}" for i in range(entries)], "segment_id": 1}
    )
    index = pd.Index(customers["customer_id"], dtype=object)
    # A tenth of the customers bought something a year ago (before they entered).
    bought = pd.Series(
        pd.Timestamp(AT - timedelta(days=365)), index=index[::10], dtype="datetime64[ns]"
    )
    return World(
        customers=customers,
        segment=pd.Series(1, index=index),
        last_purchase=bought,
        unsubscribed=set(),
        segments=None,
        exit_conditions=[],
        splits={},
        events=set(),
    )


def store(url: str | None, folder: Path, name: str) -> Engine:
    if url is None:
        return open_store(f"sqlite:///{folder / name}.db")
    engine = connect(url)
    drop_everything(engine)
    engine.dispose()
    return open_store(url)


def advance(config: Config, engine: Engine, entries: int, traced: bool) -> float:
    """Advance the due entries of a freshly filled store: the seconds it took, or with
    ``traced`` the Python heap's peak in bytes."""
    journey = config.journeys["bench"]
    due = (entries + 9) // 10
    fill(engine, entries)
    the_world = world(entries)
    caps = CapCounter(engine, config, "bench", journey, AT, 1)
    result = JourneyRun("bench")
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    _advance(
        engine,
        config,
        "bench",
        journey,
        the_world,
        caps,
        the_world.customers,
        {},
        None,
        None,
        None,
        RunRenderBudget(3600, 0.05),
        AT,
        1,
        result,
    )
    seconds = time.perf_counter() - start
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert result.moves == due, (result.moves, due)
    with engine.connect() as connection:
        recorded = connection.execute(text("SELECT COUNT(*) FROM journey_move")).scalar_one()
    assert recorded == due
    engine.dispose()
    return peak if traced else seconds


def waking(config: Config, engine: Engine, entries: int) -> float:
    """Seconds of the wake-up that precedes advancing in a run: every waiting (not due) entry
    read, a chunk at a time, for its exit_when check (none exits here: the purchases are older
    than the entries)."""
    journey = config.journeys["bench"]
    fill(engine, entries)
    the_world = world(entries)
    start = time.perf_counter()
    woken = wake(engine, "bench", journey, the_world, AT)
    seconds = time.perf_counter() - start
    assert woken == (0, 0), woken
    engine.dispose()
    return seconds


def measure(url: str | None, folder: Path, entries: int) -> dict[str, float]:
    config_path = folder / "config.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    due = (entries + 9) // 10

    baseline_engine = store(url, folder, "baseline")
    fill(baseline_engine, entries)
    start = time.perf_counter()
    with baseline_engine.begin() as connection:
        moved = connection.execute(
            text(
                "UPDATE journey_entry SET step = 'second', step_at = :at, due_at = :next, "
                "moves = moves + 1 WHERE journey = 'bench' AND status = 'active' AND due_at <= :at"
            ),
            {"at": time_param(AT), "next": time_param(AT + timedelta(days=1))},
        ).rowcount
    baseline = time.perf_counter() - start
    assert moved == due, (moved, due)
    baseline_engine.dispose()

    seconds = advance(config, store(url, folder, "journeys"), entries, traced=False)
    # Memory in a second pass on an identical store: tracemalloc slows Python code three- to
    # fourfold, so the timed pass runs without it.
    peak = advance(config, store(url, folder, "memory"), entries, traced=True)
    wake_up = waking(config, store(url, folder, "wake"), entries)
    return {
        "seconds": seconds,
        "baseline": baseline,
        "due": due,
        "peak": peak / 2**20,
        "wake": wake_up,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="Also on this PostgreSQL database.")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, url in (("SQLite", None), ("PostgreSQL", args.postgres)):
            if label == "PostgreSQL" and url is None:
                continue
            found = measure(url, Path(folder), args.entries)
            rows.append((label, found))
    print(f"journeys: {args.entries:,} entries, a tenth due; load average {os.getloadavg()[0]:.2f}")
    header = (
        f"{'store':<11} {'due':>9} {'advance':>9} {'moves/s':>10} {'plain UPDATE':>13} "
        f"{'ratio':>7} {'peak heap':>10} {'wake-up':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, found in rows:
        print(
            f"{label:<11} {int(found['due']):>9,} {found['seconds']:>8.2f}s "
            f"{found['due'] / found['seconds']:>10,.0f} {found['baseline']:>12.2f}s "
            f"{found['seconds'] / found['baseline']:>6.1f}x {found['peak']:>7.0f} MiB "
            f"{found['wake']:>8.2f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
