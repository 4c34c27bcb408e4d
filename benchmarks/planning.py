"""Time ``campaign forecast`` and ``campaign check`` with a campaign that fires every minute.

    python -m benchmarks.planning --customers 100000 --days 14

The repository's demo config plus a campaign on ``* * * * *`` (at most one message a day), on a
demo shop of ``--customers`` in a temporary SQLite store, after one real run. A 14-day forecast
simulates 20,161 runs. The plain baseline, measured in the same process, is the per-run cost of
planning every run in full, as the forecast did before (``simulate_plainly``): one full plan of
the whole table, timed ``--baseline-runs`` times, times the number of simulated runs. The
incremental simulation plans each customer only at the runs where its inputs change. Each step
is reported in wall-clock and in CPU seconds (the process's own), as the machine is shared.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from campaigns.check import check_workspace
from campaigns.config import load_config
from campaigns.data import replace_with_demo
from campaigns.forecast import planned_ahead, run_times, simulate
from campaigns.inputs import gather_inputs
from campaigns.planner import PlanInputs, plan_campaigns
from campaigns.run import prepare, run_campaigns
from store.engine import opened_store

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)

EVERY_MINUTE = """
[campaigns.every-minute]
description = "A campaign that fires every minute, at most once a day per customer"
segments = ["*"]
trigger = { type = "schedule", cron = "* * * * *", timezone = "UTC" }
channel = "export"
template = "newsletter"
subject = "Minute by minute"
priority = 5
caps = [{ messages = 1, per = "1d" }]
"""


def workspace(folder: Path) -> Path:
    """The demo config with a per-minute campaign, its store in ``folder``."""
    text = (REPO / "config.toml").read_text()
    text = text.replace('templates = "templates"', f'templates = "{REPO / "templates"}"')
    url = f"sqlite:///{folder / 'bench.db'}"
    text = text.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{url}"')
    path = folder / "config.toml"
    path.write_text(text + EVERY_MINUTE)
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seconds(start: float) -> float:
    return time.perf_counter() - start


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
    parser.add_argument("--no-check", action="store_true", help="skip timing campaign check")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = workspace(Path(folder))
        config = load_config(path)
        clock = time.perf_counter()
        replace_with_demo(config, args.customers, 7, AT - timedelta(days=1))
        run_campaigns(config, at=AT)
        print(f"setup: demo shop and one real run, {seconds(clock):.1f} s")
        start = AT + timedelta(minutes=1)
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
            incremental, incremental_cpu = step.read()
            rows.append(
                (f"simulate {result.runs:,} runs, incremental", incremental, incremental_cpu)
            )
            # The plain baseline: one run planned in full, as the plain simulation plans each.
            plain = []
            for _ in range(args.baseline_runs):
                clock = time.perf_counter()
                table = ready.customers.copy()
                table["recency"] = table["recency"] + 1 / 1440
                plan_campaigns(
                    config,
                    PlanInputs(
                        customers=table,
                        at=start,
                        planned_windows=base.planned_windows,
                        suppressed=base.suppressed,
                        events=base.events,
                        history=base.history,
                        already_sent=base.already_sent,
                    ),
                    ready.model.names,
                )
                plain.append(seconds(clock))
        forecast_total = sum(s for _, s, _ in rows)
        forecast_cpu = sum(c for _, _, c in rows)
        per_run = min(plain)
        runs = len(run_times(config, start, args.days))
        print(
            f"\nForecast: {args.customers:,} customers, {args.days} days, "
            f"a campaign every minute (SQLite)"
        )
        print(f"{'step':<40} {'seconds':>9} {'CPU s':>9}")
        print("-" * 60)
        for name, value, cpu in rows:
            print(f"{name:<40} {value:>9.2f} {cpu:>9.2f}")
        print("-" * 60)
        print(f"{'forecast total':<40} {forecast_total:>9.2f} {forecast_cpu:>9.2f}")
        print()
        print(f"plain baseline: one run planned in full   {per_run:>9.3f} s (best of {len(plain)})")
        print(f"plain simulation, {runs:,} runs (extrapolated) {per_run * runs:>9.0f} s")
        print(
            f"incremental simulation: {incremental:.2f} s = {incremental / per_run:.1f} full "
            f"plans; {per_run * runs / incremental:,.0f}x faster than the plain simulation"
        )
        if not args.no_check:
            step = Clock()
            report = check_workspace(config, forecast_days=args.days)
            wall, cpu = step.read()
            print(
                f"campaign check (config, templates, {args.days}-day forecast from now): "
                f"{wall:.2f} s ({cpu:.2f} s CPU), {len(report.warnings)} warnings"
            )
        print(f"peak memory: {peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
