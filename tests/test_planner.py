"""The rule engine: triggers, audiences, conditions, suppression, caps and priority."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import pandas as pd
import pytest

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.errors import UnknownSegment
from campaigns.planner import (
    ALREADY_PLANNED,
    CAMPAIGN_CAP,
    DISABLED,
    DUE,
    GLOBAL_CAP,
    LOWER_PRIORITY,
    NO_TRIGGER,
    NOT_DUE,
    SUPPRESSED,
    PlanInputs,
    deferred_until,
    plan_campaigns,
)

AT = datetime(2026, 11, 23, 12)
NAMES = {1: "VIP", 2: "Regulars", 3: "Lapsed"}

HEAD = """\
[source]
type = "demo"

[channels.export]
type = "file"
"""

CONFIG = (
    HEAD
    + """
[campaigns.vip]
segments = ["VIP"]
trigger = { type = "schedule", cron = "0 9 * * *" }
channel = "export"
template = "t"
priority = 5

[campaigns.all]
segments = ["*"]
trigger = { type = "schedule", cron = "0 8 * * *" }
channel = "export"
template = "t"

[campaigns.later]
segments = [3]
trigger = { type = "once", at = 2027-01-01T00:00:00 }
channel = "export"
template = "t"

[campaigns.off]
enabled = false
segments = ["lapsed"]
trigger = { type = "schedule", cron = "0 8 * * *" }
channel = "export"
template = "t"
"""
)


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load(tmp_path, CONFIG)


def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "segment_id": [1, 1, 2, 3, 3],
            "income": [90_000.0, 30_000.0, None, 45_000.0, 20_000.0],
            "country": ["GB", "DE", "GB", "FR", "GB"],
            "recency": [3.0, 10.0, 40.0, 200.0, 400.5],
        }
    )


def plan(config: Config, only: str | None = None, **inputs: object) -> dict[str, object]:
    made = PlanInputs(customers=customers(), at=AT, **inputs)  # type: ignore[arg-type]
    return {p.name: p for p in plan_campaigns(config, made, NAMES, only)}


def ids(frame: pd.DataFrame) -> list[str]:
    return frame["customer_id"].tolist()


def test_statuses_audiences_and_arbitration(config: Config) -> None:
    plans = plan(config, suppressed={"e"})
    vip, every, later, off = (plans[n] for n in ("vip", "all", "later", "off"))
    assert (vip.status, later.status, off.status) == (DUE, NOT_DUE, DISABLED)  # type: ignore[attr-defined]
    assert ids(vip.selected) == ["a", "b"]  # type: ignore[attr-defined]
    assert vip.window == "2026-11-23T09:00Z"  # type: ignore[attr-defined]
    # "all" has lower priority: a and b went to "vip"; e is suppressed.
    assert ids(every.audience) == ["a", "b", "c", "d", "e"]  # type: ignore[attr-defined]
    assert ids(every.selected) == ["c", "d"]  # type: ignore[attr-defined]
    assert dict(every.left_out) == {SUPPRESSED: 1, LOWER_PRIORITY: 2}  # type: ignore[attr-defined]
    assert ids(later.audience) == ["d", "e"]  # type: ignore[attr-defined]


def test_a_planned_window_is_not_planned_again(config: Config) -> None:
    plans = plan(config, planned_windows={("vip", "2026-11-23T09:00Z")})
    assert plans["vip"].status == ALREADY_PLANNED  # type: ignore[attr-defined]
    # With vip out of the way, "all" reaches everyone.
    assert ids(plans["all"].selected) == ["a", "b", "c", "d", "e"]  # type: ignore[attr-defined]


def test_two_messages_per_run_when_allowed(config: Config) -> None:
    settings = config.settings.model_copy(update={"max_messages_per_customer_per_run": 2})
    plans = plan(config.model_copy(update={"settings": settings}))
    assert len(plans["all"].selected) == 5  # type: ignore[attr-defined]


def test_only_one_campaign(config: Config) -> None:
    plans = plan(config, only="all")
    assert list(plans) == ["all"]
    assert len(plans["all"].selected) == 5  # type: ignore[attr-defined]


def test_unknown_segment_lists_the_segments(config: Config) -> None:
    made = PlanInputs(customers=customers(), at=AT)
    with pytest.raises(UnknownSegment) as caught:
        plan_campaigns(config, made, {1: "VIP", 2: "Regulars"})
    assert str(caught.value) == (
        "campaigns.later.segments: no segment 3; the current segments are: "
        "1 = 'VIP'; 2 = 'Regulars'"
    )


def one(trigger: str, extra: str = "") -> str:
    return (
        HEAD
        + f"""
[campaigns.c]
segments = ["*"]
trigger = {trigger}
channel = "export"
template = "t"
{extra}
"""
    )


def test_where_condition_narrows_the_audience(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        one(
            '{ type = "schedule", cron = "0 8 * * *" }',
            "where = 'income >= 30000 and country != \"FR\"'",
        ),
    )
    # c has no income: a comparison with a missing value is false.
    assert ids(plan(config)["c"].selected) == ["a", "b"]  # type: ignore[attr-defined]


def test_segment_entered_and_exited(tmp_path: Path) -> None:
    before = pd.Series({"a": 2, "b": 1, "c": 2, "d": 1, "e": 3})
    entered = load(tmp_path, one('{ type = "segment_entered" }').replace('["*"]', '["VIP"]'))
    plans = plan(entered, previous_segments=before)
    assert ids(plans["c"].selected) == ["a"]  # type: ignore[attr-defined]
    assert plans["c"].selected["window"].tolist() == ["entered@2026-11-23T12:00Z"]  # type: ignore[attr-defined]
    exited = load(tmp_path, one('{ type = "segment_exited" }').replace('["*"]', '["VIP"]'))
    # d was VIP and is now Lapsed; the campaign selects by the segment they left.
    assert ids(plan(exited, previous_segments=before)["c"].selected) == ["d"]  # type: ignore[attr-defined]
    # No earlier memberships (a first run): the assignment is a baseline, nobody "entered".
    assert plan(entered)["c"].status == NO_TRIGGER  # type: ignore[attr-defined]


def test_inactive_fires_once_per_spell(tmp_path: Path) -> None:
    config = load(tmp_path, one('{ type = "inactive", days = 180 }'))
    selected = plan(config)["c"].selected  # type: ignore[attr-defined]
    assert ids(selected) == ["d", "e"]
    # The window is the day of the last purchase, so the same spell keeps the same key.
    assert selected["window"].tolist() == [
        "inactive-since-2026-05-07",
        "inactive-since-2025-10-19",
    ]


def test_event_trigger_uses_recent_events_only(tmp_path: Path) -> None:
    config = load(tmp_path, one('{ type = "event", event = "cart_abandoned", within = "2d" }'))
    events = pd.DataFrame(
        {
            "customer_id": ["a", "b", "b", "c", "d"],
            "event": [
                "cart_abandoned",
                "cart_abandoned",
                "cart_abandoned",
                "viewed",
                "cart_abandoned",
            ],
            "occurred_at": pd.to_datetime(
                [
                    "2026-11-23 08:00",
                    "2026-11-22 09:00",
                    "2026-11-23 10:30",
                    "2026-11-23 09:00",
                    "2026-11-20 09:00",
                ]
            ),
        }
    )
    selected = plan(config, events=events)["c"].selected  # type: ignore[attr-defined]
    assert ids(selected) == ["a", "b"]
    assert selected["window"].tolist() == [
        "cart_abandoned@2026-11-23T08:00:00",
        "cart_abandoned@2026-11-23T10:30:00",
    ]


def history(*rows: tuple[str, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "campaign", "created_at"])
    frame["created_at"] = pd.to_datetime(frame["created_at"])
    return frame


def test_campaign_and_global_caps(tmp_path: Path) -> None:
    text = one(
        '{ type = "schedule", cron = "0 8 * * *" }', 'caps = [{ messages = 1, per = "7d" }]'
    ).replace(
        "[channels.export]",
        '[settings]\ncaps = [{ messages = 2, per = "1d" }]\n\n[channels.export]',
    )
    config = load(tmp_path, text)
    sent = history(
        ("a", "c", "2026-11-20 08:00"),  # this campaign, inside 7 days: campaign cap
        ("b", "c", "2026-11-10 08:00"),  # this campaign, long ago: fine
        ("c", "x", "2026-11-23 07:00"),  # two others today: global cap of 2 per day
        ("c", "y", "2026-11-23 08:00"),
        ("d", "x", "2026-11-22 08:00"),  # one other, yesterday: fine
    )
    made = plan(config, history=sent)["c"]
    assert ids(made.selected) == ["b", "d", "e"]  # type: ignore[attr-defined]
    assert dict(made.left_out) == {CAMPAIGN_CAP: 1, GLOBAL_CAP: 1}  # type: ignore[attr-defined]


def test_quiet_hours_defer_to_the_local_morning() -> None:
    zones = pd.Series(["Europe/London", "America/New_York", "Asia/Tokyo"], index=["a", "b", "c"])
    # 23:30 UTC: London 23:30 (quiet), New York 18:30 (not), Tokyo 08:30 next day (not).
    late = deferred_until(zones, datetime(2026, 11, 23, 23, 30), time(21), time(8))
    assert late["a"] == pd.Timestamp("2026-11-24 08:00")
    assert pd.isna(late["b"])
    assert pd.isna(late["c"])
    # 05:00 UTC: London 05:00 (quiet until 08:00 today), New York 00:00 (quiet until 13:00 UTC).
    early = deferred_until(zones, datetime(2026, 11, 24, 5), time(21), time(8))
    assert early["a"] == pd.Timestamp("2026-11-24 08:00")
    assert early["b"] == pd.Timestamp("2026-11-24 13:00")
    # Summer time: London 08:00 is 07:00 UTC.
    summer = deferred_until(zones, datetime(2026, 7, 1, 2), time(21), time(8))
    assert summer["a"] == pd.Timestamp("2026-07-01 07:00")


def test_condition_errors_name_the_key_and_column(tmp_path: Path) -> None:
    from campaigns.errors import ConfigError

    text = one('{ type = "schedule", cron = "0 8 * * *" }', "where = 'income >'")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert str(caught.value) == (
        f"{tmp_path}/config.toml:12: campaigns.c.where: column 9: expected a value but found "
        "the end"
    )


def test_target_the_best_by_expected_value(tmp_path: Path) -> None:
    text = one(
        '{ type = "schedule", cron = "0 8 * * *" }',
        '[campaigns.c.target]\nby = "score"\nvalue = "monetary"\ntop = 2',
    )
    config = load(tmp_path, text)
    table = customers().assign(
        score=[0.1, 0.9, 0.5, 0.2, 0.05], monetary=[100.0, 10.0, 50.0, 300.0, 10.0]
    )
    made = PlanInputs(customers=table, at=AT)
    [plan] = plan_campaigns(config, made, NAMES)
    # Expected values: a 10, b 9, c 25, d 60, e 0.5: the two best are d and c.
    assert sorted(ids(plan.selected)) == ["c", "d"]
    assert dict(plan.left_out) == {"below the targeting cut": 3}
    shared = load(tmp_path, text.replace("top = 2", "share = 0.2"))
    [plan] = plan_campaigns(shared, made, NAMES)
    assert ids(plan.selected) == ["d"]
