"""A whole run through the library on each store backend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.run import RunResult, run_campaigns
from store import outbox
from store.engine import open_store

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Config:
    """The repository's demo config at 300 customers, on the backend under test."""
    text = (REPO / "config.toml").read_text()
    text = text.replace("customers = 5000", "customers = 300\nend = 2026-11-20T00:00:00")
    text = text.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{store_url}"')
    text = text.replace('templates = "templates"', f'templates = "{REPO / "templates"}"')
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path)


def held_out(result: RunResult) -> int:
    """Customers a run's winback experiment held out (they get no message)."""
    notes = [n for n in result.notes if n.endswith("held out (experiment)")]
    return int(notes[0].split()[1]) if notes else 0


def deferred(result: RunResult) -> int:
    """Messages a run queued for after quiet hours (its --at is the time: they wait)."""
    notes = [n for n in result.notes if n.endswith("deferred until quiet hours end")]
    return sum(int(n.split(": ")[1].split()[0].replace(",", "")) for n in notes)


def test_run_twice_sends_once(config: Config) -> None:
    first = run_campaigns(config, at=AT)
    assert first.loaded
    assert first.model_fitted
    # One message per customer, but for those the winback experiment holds out.
    expected = 300 - held_out(first)
    assert 290 <= expected < 300
    assert first.new_messages == expected
    # Messages deferred past the run's time by quiet hours wait for a later run.
    assert first.sent == expected - deferred(first)
    assert first.entered == 300
    second = run_campaigns(config, at=AT)
    assert not second.loaded
    assert not second.model_fitted
    assert second.new_messages == second.sent == 0
    assert second.entered == second.exited == 0
    engine = open_store(config.store.url, config.root)
    # The experiment's holdout occasions are recorded but never delivered.
    waiting = {"queued": deferred(first)} if deferred(first) else {}
    assert outbox.counts_by_status(engine) == {
        "held_out": held_out(first),
        "sent": first.sent,
        **waiting,
    }
    engine.dispose()


def test_next_window_sends_again_and_exports_jsonl(config: Config) -> None:
    first = run_campaigns(config, at=AT)
    # The next day: winback (daily) fires again; vip-thanks (Mondays) and newsletter do not.
    later = run_campaigns(config, at=AT + timedelta(days=1))
    campaigns = {row.campaign for row in later.rows if row.messages}
    assert campaigns == {"winback"}
    vip = sorted((config.root / "out" / "vip-thanks").glob("*.jsonl"))
    # The second file holds what the first run deferred until the quiet hours ended.
    waited = [n for n in first.notes if n.startswith("vip-thanks:") and "deferred" in n]
    assert len(vip) == (2 if waited else 1)
    if waited:
        assert len(vip[1].read_text().splitlines()) == int(waited[0].split()[1])
    record = json.loads(vip[0].read_text().splitlines()[0])
    assert record["idempotency_key"].startswith("vip-thanks:C")
    assert "https://beanandleaf.example/unsubscribe?customer=" in record["body_text"]


def test_dry_run_writes_nothing(config: Config) -> None:
    dry = run_campaigns(config, at=AT, dry_run=True)
    assert dry.run_id is None
    assert dry.new_messages == 300 - held_out(dry)
    engine = open_store(config.store.url, config.root)
    assert outbox.counts_by_status(engine) == {}
    engine.dispose()
    real = run_campaigns(config, at=AT)
    assert [(r.campaign, r.segment, r.audience, r.messages) for r in dry.rows] == [
        (r.campaign, r.segment, r.audience, r.messages) for r in real.rows
    ]


def test_queued_messages_of_an_interrupted_run_are_delivered_by_the_next(config: Config) -> None:
    first = run_campaigns(config, at=AT)
    engine = open_store(config.store.url, config.root)
    # A run that died after writing its outbox but before delivering left these behind.
    orphans = pd.DataFrame(
        {
            "idempotency_key": ["winback:C000001:2026-11-22T10:00Z"],
            "run_id": 99,
            "campaign": "winback",
            "window": "2026-11-22T10:00Z",
            "customer_id": "C000001",
            "segment_id": 4,
            "variant": None,
            "channel": "export",
            "recipient": "x@example.com",
            "subject": "We miss you",
            "body_text": "Hello",
            "body_html": None,
            "created_at": AT,
        }
    )
    assert outbox.enqueue(engine, orphans) == 1
    result = run_campaigns(config, at=AT + timedelta(minutes=5))
    assert result.sent == 1
    assert "delivered 1 messages queued by earlier runs (99)" in result.notes
    counts = outbox.counts_by_status(engine)
    assert (counts["held_out"], counts["sent"]) == (held_out(first), first.sent + 1)
    engine.dispose()


def test_quiet_hours_defer_instead_of_dropping(config: Config) -> None:
    # 03:00 UTC on a winter night: quiet (21:00-08:00) in every demo customer's timezone. The
    # run is in the future, so by the wall clock the quiet hours have not ended: nothing is sent.
    night = datetime(2030, 1, 10, 3, 0)
    result = run_campaigns(config, at=night)
    assert result.new_messages > 0
    assert result.sent == 0
    assert any("deferred until quiet hours end" in note for note in result.notes)
    engine = open_store(config.store.url, config.root)
    waiting = outbox.counts_by_status(engine)
    assert waiting["queued"] == result.new_messages
    from store.bulk import read_frame

    times = read_frame(
        engine, "SELECT next_attempt_at FROM message", datetime_columns=["next_attempt_at"]
    )["next_attempt_at"]
    # The earliest end is 08:00 in Central Europe (07:00 UTC), the latest in New York.
    assert times.min() == pd.Timestamp("2030-01-10 07:00")
    assert times.max() == pd.Timestamp("2030-01-10 13:00")  # 08:00 in New York
    engine.dispose()
