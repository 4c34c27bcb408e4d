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
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from campaigns.config import load_config
from campaigns.idle import Watermark
from campaigns.run import run_campaigns
from campaigns.summary import RunResult
from store.engine import connect, opened_store
from store.migrate import drop_everything
from store.tables import CampaignRun

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--store", help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--no-hour-later", action="store_true", help="skip the third run")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
