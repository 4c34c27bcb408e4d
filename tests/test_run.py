"""A whole run through the library on each store backend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.counts import FATES
from campaigns.run import run_campaigns
from campaigns.summary import RunResult
from store import outbox
from store.engine import open_store

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Config:
    """The repository's demo config at 300 customers (history up to the first run), on the
    backend under test."""
    text = (REPO / "config.toml").read_text()
    text = text.replace("customers = 5000", "customers = 300")
    text = text.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{store_url}"')
    text = text.replace('templates = "templates"', f'templates = "{REPO / "templates"}"')
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path)


def held_out(result: RunResult) -> int:
    """Customers a run's winback experiment held out (they get no message)."""
    notes = [n for n in result.notes if n.endswith("held out (experiment)")]
    return int(notes[0].split()[1]) if notes else 0


def test_run_twice_sends_once(config: Config) -> None:
    first = run_campaigns(config, at=AT)
    assert first.loaded
    assert first.model_fitted
    # One message per customer, but for those the winback experiment holds out.
    expected = 300 - held_out(first)
    assert 290 <= expected < 300
    totals = first.totals
    assert first.new_messages == totals.planned == expected
    # At 12:00 UTC it is 07:00 in New York: those customers' messages wait for 08:00 there.
    assert totals.sent + totals.deferred == expected
    assert totals.deferred > 0
    assert first.entered == 300
    second = run_campaigns(config, at=AT)
    assert not second.loaded
    assert not second.model_fitted
    assert second.new_messages == second.totals.sent == 0
    assert second.entered == second.exited == 0
    engine = open_store(config.store.url, config.root)
    # The experiment's holdout occasions are recorded but never delivered; the deferred wait.
    assert outbox.counts_by_status(engine) == {
        "held_out": held_out(first),
        "sent": totals.sent,
        "queued": totals.deferred,
    }
    engine.dispose()


def test_the_counts_add_up_and_match_the_outbox(config: Config) -> None:
    result = run_campaigns(config, at=AT)
    for row in result.rows:
        counts = row.counts
        # Everyone a campaign matched is planned, held out or left out (for a reason)...
        assert counts.audience == counts.planned + counts.held_out + counts.left_out_total, row
        # ...and every planned message is in exactly one state.
        assert counts.planned == sum(getattr(counts, name) for name in FATES), row
    totals = result.totals
    assert totals.audience == sum(r.counts.audience for r in result.rows)
    assert totals.planned == sum(r.counts.planned for r in result.rows)
    engine = open_store(config.store.url, config.root)
    stored = outbox.counts_by_status(engine)
    engine.dispose()
    assert stored["sent"] == totals.sent
    assert stored["queued"] == totals.deferred + totals.queued
    assert stored["held_out"] == totals.held_out
    # A row says "sent" only for what the channel confirmed: the files hold exactly that many.
    exported = sum(len(pd.read_csv(p)) for p in (config.root / "out").rglob("*-run1.csv"))
    exported += sum(
        len(p.read_text().splitlines()) for p in (config.root / "out").rglob("*-run1.jsonl")
    )
    assert exported == totals.sent
    assert json.loads(json.dumps(result.to_json()))["totals"]["sent"] == totals.sent


def test_a_run_in_the_past_does_not_deliver_what_it_deferred(config: Config) -> None:
    # The wall clock is long past 13:00 on that day, but the run's time is 12:00: what quiet
    # hours deferred to 13:00 UTC stays queued until a run (or worker) at or after 13:00.
    first = run_campaigns(config, at=AT)
    assert first.totals.deferred > 0
    assert first.totals.deferred_from == first.totals.deferred_until == datetime(2026, 11, 23, 13)
    again = run_campaigns(config, at=AT + timedelta(minutes=59))
    assert again.sent_from_earlier_runs == 0
    later = run_campaigns(config, at=AT + timedelta(hours=1))
    assert later.sent_from_earlier_runs == first.totals.deferred
    engine = open_store(config.store.url, config.root)
    assert outbox.counts_by_status(engine).get("queued", 0) == 0
    engine.dispose()


def test_next_window_sends_again_and_exports_jsonl(config: Config) -> None:
    # A history that ends three days before the run: some customers become inactive a day later.
    assert config.file is not None
    config.file.write_text(
        config.file.read_text().replace("customers = 300", "customers = 300\nend = 2026-11-20")
    )
    config = load_config(config.file)
    run_campaigns(config, at=AT)
    # The next day: winback (daily) fires again; vip-thanks (Mondays) and newsletter do not (the
    # lapsing journey's rows are its steps, not a campaign firing).
    later = run_campaigns(config, at=AT + timedelta(days=1))
    campaigns = {
        row.campaign for row in later.rows if row.counts.planned and row.status != "journey"
    }
    assert campaigns == {"winback"}
    vip = sorted((config.root / "out" / "vip-thanks").glob("*.jsonl"))
    # The first run's file, and the second run's with what the first deferred (quiet hours).
    assert [p.name for p in vip] == ["20261123T1200-run1.jsonl", "20261124T1200-run2.jsonl"]
    record = json.loads(vip[0].read_text().splitlines()[0])
    assert record["idempotency_key"].startswith("vip-thanks:C")
    # The demo's [tracking] signs the unsubscribe URL (no customer id in it).
    assert "https://t.beanandleaf.example/u/" in record["body_text"]
    assert "customer=" not in record["body_text"]


def test_dry_run_writes_nothing(config: Config) -> None:
    dry = run_campaigns(config, at=AT, dry_run=True)
    assert dry.run_id is None
    assert dry.new_messages == 300 - held_out(dry)
    engine = open_store(config.store.url, config.root)
    assert outbox.counts_by_status(engine) == {}
    engine.dispose()
    real = run_campaigns(config, at=AT)

    def shown(result: RunResult) -> list[tuple[object, ...]]:
        return [
            (r.campaign, r.segment, r.counts.audience, r.counts.planned, r.counts.held_out)
            for r in result.rows
        ]

    assert shown(dry) == shown(real)


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
    assert result.sent_from_earlier_runs == 1
    assert outbox.counts_by_status(engine) == {
        "held_out": held_out(first),
        "sent": first.totals.sent + 1,
        "queued": first.totals.deferred,
    }
    engine.dispose()


def test_quiet_hours_defer_instead_of_dropping(config: Config) -> None:
    # 03:00 UTC on a winter night: quiet (21:00-08:00) in every demo customer's timezone. The
    # run is in the future, so by the wall clock the quiet hours have not ended: nothing is sent.
    night = datetime(2030, 1, 10, 3, 0)
    result = run_campaigns(config, at=night)
    assert result.new_messages > 0
    assert result.totals.sent == 0
    assert result.totals.deferred == result.new_messages
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


def test_plan_preview_dry_run_and_run_compute_the_same_messages(config: Config) -> None:
    """One computation: at the same --at, plan, preview, dry run and run agree customer by
    customer on who gets which campaign's message (and variant, subject and text), who is held
    out, and who would be deferred."""
    from campaigns.preview import plan_workspace, preview_messages
    from store.bulk import read_frame

    columns = ["customer_id", "status", "variant", "subject", "body_text", "deferred"]

    def by_customer(frames: dict[str, pd.DataFrame]) -> dict[str, list[tuple[object, ...]]]:
        shown = {}
        for campaign, frame in frames.items():
            frame = frame.assign(
                deferred=frame["next_attempt_at"].notna(),
                variant=frame["variant"].astype(object).where(frame["variant"].notna(), "-"),
            )
            rows = frame[columns].astype(str).itertuples(index=False, name=None)
            shown[campaign] = sorted(rows)
        return shown

    plan = plan_workspace(config, AT)
    dry = run_campaigns(config, at=AT, dry_run=True)
    planned = by_customer(plan.messages)
    assert planned == by_customer(dry.messages)
    assert set(planned) == {
        "cart-reminder",
        "vip-thanks",
        "winback",
        "reorder-reminder",
        "newsletter",
    }
    customers = sorted({row[0] for rows in planned.values() for row in rows})

    previews = {
        campaign: {p.customer_id: p for p in preview_messages(config, campaign, AT, customers)}
        for campaign in planned
    }
    run_campaigns(config, at=AT)
    engine = open_store(config.store.url, config.root)
    stored = read_frame(
        engine,
        "SELECT campaign, customer_id, status, variant, subject, body_text, next_attempt_at "
        "FROM message",
    )
    engine.dispose()
    # Delivery changed the states; what was planned, held out or deferred did not.
    stored["status"] = stored["status"].where(stored["status"] == "held_out", "queued")
    stored["next_attempt_at"] = stored["next_attempt_at"].where(
        stored["next_attempt_at"].notna() & (stored["status"] == "queued")
    )
    assert by_customer(dict(tuple(stored.groupby("campaign")))) == planned  # type: ignore[arg-type]

    for campaign, rows in planned.items():
        shown = previews[campaign]
        sent = {row[0]: row for row in rows if row[1] == "queued"}
        held = {row[0] for row in rows if row[1] == "held_out"}
        assert {c for c, p in shown.items() if p.would_send} == set(sent), campaign
        assert {c for c, p in shown.items() if p.why.startswith("held out")} == held, campaign
        for customer, row in sent.items():
            assert (shown[customer].subject, shown[customer].text) == (row[3], row[4])
            assert (shown[customer].variant or "-") == row[2]


def test_status_reads_the_counts_back_from_either_store(config: Config) -> None:
    from campaigns.status import workspace_status

    assert workspace_status(config, AT).exists is False  # nothing created by looking
    result = run_campaigns(config, at=AT)
    status = workspace_status(config, AT)
    assert status.exists
    assert status.customers == 300
    assert status.model_version == 1
    assert [name for _, name, _ in status.segments] == ["VIP", "Regulars", "Lapsed", "Newcomers"]
    [run] = status.runs
    assert (run.run_id, run.at, run.status, run.error) == (result.run_id, AT, "succeeded", None)
    totals = result.totals
    for name in ("audience", "planned", *FATES, "held_out"):
        assert getattr(run.counts, name) == getattr(totals, name), name
    assert run.counts.left_out == totals.left_out
    assert run.counts.deferred_until == totals.deferred_until
    # An hour later by the status's clock, the deferred messages are due: queued, not deferred.
    later = workspace_status(config, AT + timedelta(hours=1))
    assert later.outbox.deferred == 0
    assert later.outbox.queued == totals.deferred
    assert json.loads(json.dumps(status.to_json()))["runs"][0]["sent"] == totals.sent
