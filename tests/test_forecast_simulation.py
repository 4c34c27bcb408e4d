"""The forecast's incremental simulation gives the plain simulation's forecast, run for run.

The plain simulation (:func:`campaigns.forecast.simulate_plainly`) plans every simulated run in
full; the incremental one re-plans only the customers whose inputs changed. Both run here on the
demo shop after a real run (so the store holds history, planned windows and sent keys), with
campaigns that fire often, caps that expire inside the horizon, inactive and event triggers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from campaigns.config import load_config
from campaigns.config.rules import ScheduleTrigger
from campaigns.data import replace_with_demo
from campaigns.forecast import planned_ahead, simulate, simulate_plainly
from campaigns.inputs import gather_inputs
from campaigns.planner import PlanInputs, plan_campaigns
from campaigns.run import prepare, run_campaigns
from campaigns.triggers import fire_times, next_fire
from cli.main import cli
from store.engine import opened_store

AT = datetime(2026, 11, 23, 12)

OFTEN = """
[campaigns.often]
description = "Every quarter of an hour, at most once in six hours"
segments = ["*"]
trigger = {{ type = "schedule", cron = "{cron}", timezone = "UTC" }}
channel = "export"
template = "newsletter"
subject = "Often"
priority = 5
caps = [{{ messages = 1, per = "6h" }}]
"""

EXTRA = """
[campaigns.lapsing-30d]
description = "Customers who have not bought for a month, with some spend"
segments = ["*"]
where = "monetary >= 20"
trigger = { type = "inactive", days = 30 }
channel = "export"
template = "winback"
subject = "Still there?"
priority = 40
caps = [{ messages = 1, per = "2d" }]

[campaigns.dormant]
description = "A disabled schedule"
enabled = false
segments = ["VIP"]
trigger = { type = "schedule", cron = "30 * * * *", timezone = "UTC" }
channel = "export"
template = "newsletter"
subject = "Dormant"
"""

RECENCY = """
[campaigns.recent]
description = "A condition that reads the time"
segments = ["*"]
where = "recency < 45"
trigger = { type = "schedule", cron = "0 */6 * * *", timezone = "UTC" }
channel = "export"
template = "newsletter"
subject = "Recent"
caps = [{ messages = 1, per = "1d" }]
"""


CROSSINGS = """
[campaigns.crossing]
description = "Inactive for 20 days, sent from 23 days on: the condition turns true later"
segments = ["*"]
where = "recency >= 23 and 40 > recency"
trigger = { type = "inactive", days = 20 }
channel = "export"
template = "newsletter"
subject = "Crossing"
priority = 1
"""


def workspace(tmp_path: Path, extra: str) -> Path:
    """The demo workspace at 300 customers with ``extra`` campaigns, after one real run."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "ws")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    path = tmp_path / "ws" / "config.toml"
    path.write_text(path.read_text() + extra)
    config = load_config(path)
    replace_with_demo(config, 300, 7, AT - timedelta(days=1))
    run_campaigns(config, at=AT)
    return path


def both(path: Path, start: datetime, days: int) -> tuple[dict[str, object], dict[str, object]]:
    config = load_config(path)
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, start, persist=False)
        base = gather_inputs(engine, config, ready.customers, ready.shop, start)
        fast = simulate(config, ready, base, start, days, planned_ahead(engine)).to_json()
        plain = simulate_plainly(config, ready, base, start, days).to_json()
    return fast, plain


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "days"),
    [
        (OFTEN.format(cron="*/15 * * * *"), 2),
        (OFTEN.format(cron="7 * * * *") + EXTRA, 6),
        (OFTEN.format(cron="*/20 * * * *") + RECENCY, 1),
        (OFTEN.format(cron="*/30 * * * *") + CROSSINGS, 5),
    ],
    ids=["quarter-hourly", "hourly-inactive-disabled", "condition-reads-time", "recency-crossings"],
)
def test_the_incremental_forecast_is_the_plain_one(tmp_path: Path, extra: str, days: int) -> None:
    path = workspace(tmp_path, extra)
    fast, plain = both(path, AT + timedelta(minutes=1), days)
    assert fast == plain
    # Not vacuous: the often-firing campaign sends, and its caps hold some back.
    assert fast["simulated_runs"] > 24 * days
    assert any(day["messages"].get("often") for day in fast["per_day"])  # type: ignore[union-attr]
    assert "often" in fast["held_back_by_caps"]  # type: ignore[operator]


@pytest.mark.slow
def test_windows_a_real_run_planned_ahead(tmp_path: Path) -> None:
    """A real run at a later time already planned windows of the horizon (and sent their keys):
    the forecast from before it still matches the plain one."""
    path = workspace(tmp_path, OFTEN.format(cron="*/15 * * * *"))
    run_campaigns(load_config(path), at=AT + timedelta(hours=7, minutes=30))
    fast, plain = both(path, AT + timedelta(minutes=1), 1)
    assert fast == plain


def test_rows_at_their_own_times_plan_as_separate_runs(tmp_path: Path) -> None:
    """``PlanInputs.times``: customers planned together, each at its own run time, get the plan
    each would get in a run of its own at that time (caps, events, inactive spells)."""
    path = workspace(tmp_path, OFTEN.format(cron="*/15 * * * *") + EXTRA)
    config = load_config(path)
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, AT, persist=False)
        base = gather_inputs(engine, config, ready.customers, ready.shop, AT)
    customers = ready.customers
    times = [AT + timedelta(hours=h) for h in (1, 30, 200)]
    # Every third customer at each time.
    which = np.arange(len(customers)) % 3
    together_at = np.array([times[w] for w in which], dtype="datetime64[ns]")
    table = customers.copy()
    table["recency"] = table["recency"] + [(times[w] - AT) / timedelta(days=1) for w in which]
    windows = dict.fromkeys(("often", "vip-thanks", "reorder-reminder", "newsletter", "dormant"))
    common = {
        "planned_windows": base.planned_windows,
        "suppressed": base.suppressed,
        "events": base.events,
        "history": base.history,
        "already_sent": base.already_sent,
        "schedule_windows": windows,
    }
    together = plan_campaigns(
        config, PlanInputs(customers=table, at=AT, times=together_at, **common), ready.model.names
    )
    for w, at in enumerate(times):
        alone_table = table[which == w]
        alone = plan_campaigns(
            config, PlanInputs(customers=alone_table, at=at, **common), ready.model.names
        )
        ids = set(alone_table["customer_id"].astype(str))
        for mine, theirs in zip(together, alone, strict=True):
            picked = mine.selected[mine.selected["customer_id"].astype(str).isin(ids)]
            assert sorted(zip(picked["customer_id"], picked["window"], strict=True)) == sorted(
                zip(theirs.selected["customer_id"], theirs.selected["window"], strict=True)
            ), (mine.name, at)
            seen = mine.audience[mine.audience["customer_id"].astype(str).isin(ids)]
            assert len(seen) == len(theirs.audience), (mine.name, at)
    assert sum(len(p.selected) for p in together) > 0


@pytest.mark.parametrize(
    "cron", ["* * * * *", "0 9 * * MON", "30 1 * * *", "*/7 3-5 * * *", "0 0 29 2 *"]
)
def test_fire_times_chain_next_fire(cron: str) -> None:
    trigger = ScheduleTrigger(type="schedule", cron=cron, timezone="Europe/London")
    start, end = datetime(2026, 3, 27, 23, 30, 15), datetime(2026, 4, 3)
    chained = []
    fire = next_fire(trigger, start - timedelta(seconds=1))
    while fire is not None and fire < end:
        chained.append(fire)
        fire = next_fire(trigger, fire)
    assert fire_times(trigger, start, end) == chained
