"""The step kinds ``wait = { until, on, timezone }`` and ``by_segment`` through ``campaign run`` on
each store backend, their mistakes with file, line and key, and what preview and forecast say of
them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from click.testing import CliRunner

from campaigns.config import load_config
from campaigns.errors import ConfigError, UnknownSegment
from campaigns.forecast import forecast
from campaigns.run import prepare, run_campaigns
from cli.main import cli
from store.bulk import read_frame
from store.engine import open_store, opened_store
from tests.test_journeys_run import AT, workspace

#: Monday 12:00 UTC: a wait until Monday 09:00 local is still ahead in New York (07:00 there),
#: past in Europe (13:00 in Paris), so those wait a week.
LOCAL = """
[journeys.flow]
trigger = { type = "once", at = 2026-11-23T12:00:00 }
channel = "export"

[[journeys.flow.steps]]
name = "monday"
wait = { until = "09:00", on = ["mon"], timezone = "Asia/Tokyo" }

[[journeys.flow.steps]]
name = "by-segment"
by_segment = { "1" = "first", "*" = "others" }

[[journeys.flow.steps]]
name = "first"
send = "lapsing_note"
subject = "For segment 1"
then = "exit"

[[journeys.flow.steps]]
name = "others"
send = "lapsing_story"
subject = "For the others"
"""


def _entries(url: str, root: Path) -> pd.DataFrame:
    engine = open_store(url, root)
    try:
        return read_frame(
            engine,
            "SELECT customer_id, step, due_at, status FROM journey_entry ORDER BY customer_id",
            datetime_columns=["due_at"],
        )
    finally:
        engine.dispose()


def _expected_due(zone: str) -> datetime:
    """The first Monday 09:00 in ``zone`` from AT, as naive UTC."""
    local = AT.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    day = local.date()
    while True:
        when = datetime(day.year, day.month, day.day, 9, 0, tzinfo=ZoneInfo(zone))
        if day.weekday() == 0 and when >= local:
            return when.astimezone(UTC).replace(tzinfo=None)
        day += timedelta(days=1)


def test_a_local_wait_ends_at_the_customers_own_time_and_by_segment_branches(
    tmp_path: Path, store_url: str
) -> None:
    config = load_config(workspace(tmp_path, store_url, LOCAL, customers=200))
    first = run_campaigns(config, at=AT)
    (flow,) = first.journeys
    assert flow.entered > 50
    assert flow.moves == 0
    with opened_store(config.store.url, config.root) as engine:
        customers = prepare(engine, config, AT, persist=False).customers
    entries = _entries(store_url, config.root)
    zones = customers.loc[entries["customer_id"], "timezone"]
    assert zones.nunique() > 1
    expected = [_expected_due(z) for z in zones]
    assert entries["due_at"].dt.to_pydatetime().tolist() == expected
    # New York's 09:00 is 14:00 UTC today; Europe's is next Monday.
    early = {c for c, z in zip(entries["customer_id"], zones, strict=True) if "America" in z}
    assert early
    assert len(early) < len(entries)

    second = run_campaigns(config, at=AT + timedelta(hours=3))
    (flow,) = second.journeys
    assert flow.by_step["monday"] == len(early)
    moved = _entries(store_url, config.root)
    assert set(moved.loc[moved["status"] != "active", "customer_id"]) == early

    engine = open_store(store_url, config.root)
    try:
        sent = read_frame(
            engine, "SELECT customer_id, \"window\", subject FROM message WHERE campaign = 'flow'"
        )
        moves = read_frame(
            engine,
            "SELECT customer_id, outcome, to_step FROM journey_move WHERE step = 'by-segment'",
        )
    finally:
        engine.dispose()
    segment = customers["segment_id"]
    for row in moves.itertuples():
        if int(segment[row.customer_id]) == 1:
            assert (row.outcome, row.to_step) == ("segment: 1", "first")
        else:
            assert (row.outcome, row.to_step) == ("segment: *", "others")
    assert set(sent["customer_id"]) == early
    for row in sent.itertuples():
        step = "first" if int(segment[row.customer_id]) == 1 else "others"
        assert row.window == f"entry1:{step}"


def test_preview_and_forecast_follow_the_local_wait_and_the_segment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = load_config(workspace(tmp_path, url, LOCAL, customers=80))
    assert config.file is not None
    with opened_store(config.store.url, config.root) as engine:
        customers = prepare(engine, config, AT, persist=False).customers
    paris = customers[customers["timezone"] == "Europe/Paris"].index[0]
    result = CliRunner().invoke(
        cli,
        [
            "preview",
            "flow",
            "-c",
            str(config.file),
            "--customer",
            paris,
            "--at",
            "2026-11-23T12:00",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    (walk,) = json.loads(result.output)
    sid = int(customers.at[paris, "segment_id"])
    branch = ("segment: 1", "first") if sid == 1 else ("segment: *", "others")
    assert [(s["step"], s["at"], s["outcome"], s["to"]) for s in walk["steps"]] == [
        ("monday", "2026-11-30T08:00:00", "waited", "by-segment"),
        ("by-segment", "2026-11-30T08:00:00", *branch),
        (branch[1], "2026-11-30T08:00:00", "sent", "completed"),
    ]
    (journey,) = forecast(config, AT, 10).journeys
    steps = {s.name: s for s in journey.steps}
    entered = journey.entered["2026-11-23"]
    assert steps["monday"].branches[("waited", "by-segment")] == entered
    assert entered == len(customers)
    ones = int((customers["segment_id"] == 1).sum())
    assert dict(steps["by-segment"].branches) == {
        ("segment: 1", "first"): ones,
        ("segment: *", "others"): entered - ones,
    }
    assert steps["first"].reached + steps["others"].reached == entered


def test_a_by_segment_key_naming_no_segment_stops_the_run_with_the_key(tmp_path: Path) -> None:
    journey = LOCAL.replace('"1" = "first"', 'Nope = "first"')
    config = load_config(workspace(tmp_path, f"sqlite:///{tmp_path / 's.db'}", journey, 40))
    with pytest.raises(
        UnknownSegment,
        match=r"^journeys\.flow\.steps\[2\]\.by_segment: no segment 'Nope'; the current "
        r"segments are: 1 = ",
    ):
        run_campaigns(config, at=AT)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            'wait = { until = "9am" }',
            r"config.toml:\d+: journeys.flow.steps\[1\].wait.until: must be a local time such "
            r"as '09:00', got '9am'$",
        ),
        (
            'wait = { until = "09:00", on = ["monday"] }',
            r"config.toml:\d+: journeys.flow.steps\[1\].wait.on\[1\]: must be one of 'mon', "
            r"'tue', 'wed', 'thu', 'fri', 'sat' or 'sun', got 'monday'$",
        ),
        (
            'wait = { until = "09:00", timezone = "Mars/Base" }',
            r"config.toml:\d+: journeys.flow.steps\[1\].wait.timezone: unknown timezone "
            r"'Mars/Base'; use an IANA name such as 'Europe/London'$",
        ),
        (
            "by_segment = {}",
            r"config.toml:\d+: journeys.flow.steps\[1\].by_segment: names no segment; write "
            r"by_segment = \{ SEGMENT = 'STEP', '\*' = 'STEP' \}$",
        ),
        (
            'by_segment = { VIP = "nowhere" }',
            r"config.toml:\d+: journeys.flow.steps\[1\].by_segment: step 'monday' goes to "
            r"'nowhere', which is not a step",
        ),
        (
            'by_segment = { VIP = "first" }\nthen = "others"',
            r"config.toml:\d+: journeys.flow.steps\[1\]: a by_segment step names its branches in "
            r"by_segment = \{ SEGMENT = 'STEP' \}, with '\*' for the other segments$",
        ),
    ],
)
def test_a_mistake_in_the_new_steps_names_file_line_and_key(
    tmp_path: Path, step: str, message: str
) -> None:
    journey = LOCAL.replace(
        'wait = { until = "09:00", on = ["mon"], timezone = "Asia/Tokyo" }', step
    )
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(workspace(tmp_path, "sqlite:///x.db", journey))
    assert "\n" not in str(raised.value)
