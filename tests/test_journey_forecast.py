"""Journeys in ``campaign forecast``: entries per day, each step and branch over the horizon, from
today's state and the rates seen so far, checked against what real runs then do."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.forecast import forecast
from campaigns.journeys.forecast import JourneyForecast
from campaigns.run import run_campaigns
from cli.main import cli
from store.bulk import time_param
from store.engine import open_store
from tests.test_journeys_run import AT, workspace


def _flow(config: Config, days: int, at_days: float = 0) -> JourneyForecast:
    (journey,) = forecast(config, AT + timedelta(days=at_days), days).journeys
    return journey


def _branches(journey: JourneyForecast) -> dict[str, dict[tuple[str, str], float]]:
    return {s.name: {k: round(v, 2) for k, v in s.branches.items()} for s in journey.steps}


def test_the_forecast_of_a_journey_matches_the_runs_and_learns_its_rates(
    tmp_path: Path, store_url: str
) -> None:
    config = load_config(workspace(tmp_path, store_url, customers=200))
    before = _flow(config, days=3)
    entered = before.entered["2026-11-23"]
    assert entered > 50
    assert before.entered == {"2026-11-23": entered, "2026-11-24": 0, "2026-11-25": 0}
    assert before.inside_now == 0
    assert before.rates == {
        "w": (0.05, "no entry has left it yet: assumed 5% (the default for a click)")
    }
    click, timeout = round(0.05 * entered, 2), round(0.95 * entered, 2)
    assert _branches(before) == {
        "note": {("sent", "w"): entered},
        "w": {("clicked", "discount"): click, ("timeout", "story"): timeout},
        "discount": {("sent", "completed"): click},
        "story": {("sent", "completed"): timeout},
    }
    assert {s.name: round(s.reached, 2) for s in before.steps} == {
        "note": 0,  # entries arrive at the first step by entering (counted per day)
        "w": entered,
        "discount": click,
        "story": timeout,
    }
    assert before.messages["note"] == {"2026-11-23": entered}
    assert before.messages["story"] == {"2026-11-25": timeout}
    # A two-day horizon ends before the wait does: everyone is still waiting at its end.
    short = _flow(config, days=2)
    assert {s.name: s.waiting_at_end for s in short.steps}["w"] == entered
    assert _branches(short)["story"] == {}

    # The runs enter as many as forecast.
    first = run_campaigns(config, at=AT)
    assert first.journeys[0].entered == entered
    # From the store's state: everyone waits at w until the timeout, then most get the story.
    inside = _flow(config, days=3, at_days=1)
    assert inside.inside_now == entered
    assert {s.name: s.inside_now for s in inside.steps}["w"] == entered
    assert _branches(inside)["w"] == {("clicked", "discount"): click, ("timeout", "story"): timeout}

    # Ten clicks; the rest time out: the forecast now uses the rate seen so far.
    engine = open_store(config.store.url, config.root)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO engagement_event (dedupe_key, kind, message_id, campaign, "
                    "customer_id, occurred_at, source, machine, repeats) SELECT "
                    "'k' || customer_id, 'click', id, campaign, customer_id, :at, 'file', :no, 0 "
                    "FROM message WHERE campaign = 'flow' AND customer_id IN (SELECT customer_id "
                    "FROM message WHERE campaign = 'flow' ORDER BY customer_id LIMIT 10)"
                ),
                {"at": time_param(AT + timedelta(hours=2)), "no": False},
            )
    finally:
        engine.dispose()
    run_campaigns(config, at=AT + timedelta(days=2))
    after = _flow(config, days=3, at_days=2)
    assert after.rates == {"w": (10 / entered, f"10 of {entered:,} entries so far")}
    assert after.inside_now == 0


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_cli_forecast_shows_each_journey(tmp_path: Path, fmt: str) -> None:
    config_file = workspace(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", customers=60)
    result = CliRunner().invoke(
        cli,
        [
            "forecast",
            "-c",
            str(config_file),
            "--at",
            "2026-11-23T12:00",
            "--days",
            "3",
            "--format",
            fmt,
        ],
    )
    assert result.exit_code == 0, result.output
    if fmt == "json":
        (journey,) = json.loads(result.output)["journeys"]
        entered = journey["entered_per_day"]["2026-11-23"]
        assert journey["steps"][0] == {
            "step": "note",
            "kind": "send",
            "inside_now": 0,
            "reached": 0.0,
            "branches": [{"outcome": "sent", "to": "w", "entries": float(entered)}],
            "waiting_at_end": 0.0,
        }
        assert journey["wait_for_rates"]["w"]["then"] == 0.05
    else:
        assert "Journey flow: 0 inside now, " in result.output
        assert (
            "- flow w: 'then' taken by 5.0% (no entry has left it yet: assumed 5% (the default "
            "for a click))" in result.output
        )
