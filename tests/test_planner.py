"""Audiences, due windows, suppression and priority arbitration."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.errors import UnknownSegment
from campaigns.planner import (
    ALREADY_PLANNED,
    DISABLED,
    DUE,
    LOWER_PRIORITY,
    NOT_DUE,
    SUPPRESSED,
    plan_campaigns,
)

AT = datetime(2026, 11, 23, 12)
NAMES = {1: "VIP", 2: "Regulars", 3: "Lapsed"}

CONFIG = """\
[source]
type = "demo"

[channels.export]
type = "file"

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


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return load_config(path)


def customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"], "segment_id": [1, 1, 2, 3, 3]})


def test_statuses_audiences_and_arbitration(config: Config) -> None:
    plans = {
        p.name: p for p in plan_campaigns(config, customers(), NAMES, AT, set(), suppressed={"e"})
    }
    assert plans["vip"].status == DUE
    assert plans["later"].status == NOT_DUE
    assert plans["off"].status == DISABLED
    assert plans["vip"].selected["customer_id"].tolist() == ["a", "b"]
    # "all" has lower priority: a and b went to "vip"; e is suppressed.
    assert plans["all"].audience["customer_id"].tolist() == ["a", "b", "c", "d", "e"]
    assert plans["all"].selected["customer_id"].tolist() == ["c", "d"]
    assert dict(plans["all"].left_out) == {SUPPRESSED: 1, LOWER_PRIORITY: 2}
    assert plans["later"].audience["customer_id"].tolist() == ["d", "e"]


def test_a_planned_window_is_not_planned_again(config: Config) -> None:
    planned = {("vip", "2026-11-23T09:00Z")}
    plans = {p.name: p for p in plan_campaigns(config, customers(), NAMES, AT, planned, set())}
    assert plans["vip"].status == ALREADY_PLANNED
    # With vip out of the way, "all" reaches everyone.
    assert plans["all"].selected["customer_id"].tolist() == ["a", "b", "c", "d", "e"]


def test_two_messages_per_run_when_allowed(config: Config) -> None:
    relaxed = config.model_copy(
        update={
            "settings": config.settings.model_copy(update={"max_messages_per_customer_per_run": 2})
        }
    )
    plans = {p.name: p for p in plan_campaigns(relaxed, customers(), NAMES, AT, set(), set())}
    assert len(plans["all"].selected) == 5


def test_only_one_campaign(config: Config) -> None:
    plans = plan_campaigns(config, customers(), NAMES, AT, set(), set(), only="all")
    assert [p.name for p in plans] == ["all"]
    assert len(plans[0].selected) == 5


def test_unknown_segment_lists_the_segments(config: Config) -> None:
    with pytest.raises(UnknownSegment) as caught:
        plan_campaigns(config, customers(), {1: "VIP", 2: "Regulars"}, AT, set(), set())
    assert str(caught.value) == (
        "campaigns.later.segments: no segment 3; the current segments are: "
        "1 = 'VIP'; 2 = 'Regulars'"
    )
