"""Time ``campaign forecast`` with the demo's journey: entries per day and each step's reach.

    python -m benchmarks.journey_forecast --customers 100000 --days 14

The repository's demo config (its campaigns and the ``lapsing`` journey) on a demo shop of
``--customers`` in a temporary SQLite store, after two real runs a day apart (so entries are
inside the journey, at its steps). Timed, as ``campaign forecast`` runs them: reading the store
(features, segments), the planning inputs, the campaigns' simulation, and the journeys' forecast
(:func:`campaigns.journeys.forecast.forecast_journeys`). The plain baseline, measured in the same
process, is one full plan of every campaign over the whole customer table
(``plan_campaigns``); each step is also given as a ratio to it, since the machine is shared.
Wall-clock and CPU seconds (the process's own).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from campaigns.config import load_config
from campaigns.data import replace_with_demo
from campaigns.forecast import planned_ahead, simulate
from campaigns.inputs import gather_inputs
from campaigns.journeys.forecast import forecast_journeys
from campaigns.planner import plan_campaigns
from campaigns.run import prepare, run_campaigns
from store.engine import opened_store

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)


def workspace(folder: Path) -> Path:
    """The demo config, its store in ``folder``."""
    text = (REPO / "config.toml").read_text()
    text = text.replace('templates = "templates"', f'templates = "{REPO / "templates"}"')
    url = f"sqlite:///{folder / 'bench.db'}"
    text = text.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{url}"')
    path = folder / "config.toml"
    path.write_text(text)
    return path


class Clock:
    """Wall-clock and CPU seconds since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--baseline-runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        config = load_config(workspace(Path(folder)))
        clock = time.perf_counter()
        replace_with_demo(config, args.customers, 7, AT - timedelta(days=1))
        run_campaigns(config, at=AT)
        run_campaigns(config, at=AT + timedelta(days=1))
        print(f"setup: demo shop and two real runs, {time.perf_counter() - clock:.1f} s")
        start = AT + timedelta(days=1, hours=1)
        rows: list[tuple[str, float, float]] = []
        with opened_store(config.store.url, config.root) as engine:
            step = Clock()
            ready = prepare(engine, config, start, persist=False)
            rows.append(("read store, features, segments", *step.read()))
            step = Clock()
            base = gather_inputs(engine, config, ready.customers, ready.shop, start)
            rows.append(("planning inputs (history, windows)", *step.read()))
            step = Clock()
            result = simulate(config, ready, base, start, args.days, planned_ahead(engine))
            rows.append((f"campaigns: simulate {result.runs:,} runs", *step.read()))
            step = Clock()
            journeys = forecast_journeys(engine, config, ready, base, start, args.days)
            inside = sum(j.inside_now for j in journeys)
            entering = sum(sum(j.entered.values()) for j in journeys)
            rows.append((f"journeys: {inside:,} inside, {entering:,} entering", *step.read()))
            plain = []
            for _ in range(args.baseline_runs):
                clock = time.perf_counter()
                plan_campaigns(config, base, ready.model.names)
                plain.append(time.perf_counter() - clock)
        baseline = min(plain)
        total = sum(s for _, s, _ in rows)
        print(
            f"\nForecast: {args.customers:,} customers, {args.days} days, the demo config "
            "with its journey (SQLite)"
        )
        print(f"{'step':<42} {'seconds':>8} {'CPU s':>8} {'x plan':>8}")
        print("-" * 70)
        for name, wall, cpu in rows:
            print(f"{name:<42} {wall:>8.2f} {cpu:>8.2f} {wall / baseline:>8.1f}")
        print("-" * 70)
        print(f"{'forecast total':<42} {total:>8.2f} {'':>8} {total / baseline:>8.1f}")
        print(
            f"\nplain baseline: one full plan of every campaign, {baseline:.3f} s "
            f"(best of {len(plain)})"
        )
        print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
