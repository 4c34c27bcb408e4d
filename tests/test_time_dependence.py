"""Which campaigns move with the clock alone, and where: the numbers a condition compares
``recency`` with are where each customer's answer can change (the forecast re-plans them there)."""

from __future__ import annotations

import pytest

from campaigns.config.schema import CampaignConfig
from campaigns.time_dependence import reads_the_time, recency_thresholds


def campaign(where: str | None) -> CampaignConfig:
    settings: dict[str, object] = {
        "segments": ["*"],
        "trigger": {"type": "inactive", "days": 30},
        "channel": "export",
        "template": "winback",
    }
    if where is not None:
        settings["where"] = where
    return CampaignConfig.model_validate(settings)


@pytest.mark.parametrize(
    ("where", "thresholds"),
    [
        (None, ()),
        ("monetary >= 50", ()),
        ("frequency >= 3 and recency >= 30 and recency < 90", (30.0, 90.0)),
        ("45 > recency or recency == 7.5", (7.5, 45.0)),
        ("recency != 10 and not (recency <= 3)", (3.0, 10.0)),
        # Read otherwise: no threshold says where the answer changes.
        ("recency * 2 > 60", None),
        ("recency > frequency", None),
        ("recency is null", None),
        ("recency in [1, 2]", None),
        ("days_since(signup_date) > 30", None),
        ("recency < 30 and days_since(signup_date) > 30", None),
    ],
)
def test_recency_thresholds(where: str | None, thresholds: tuple[float, ...] | None) -> None:
    found = recency_thresholds(campaign(where))
    assert found == thresholds
    assert reads_the_time(campaign(where)) == (found != ())
