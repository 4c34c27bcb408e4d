"""``exit_when`` while waiting, on each store backend: a customer who buys or unsubscribes
while their entry waits (a ``wait`` or a ``wait_for``) exits at the next run, with the reason,
not when the wait ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from campaigns.config import load_config
from campaigns.run import run_campaigns
from store.bulk import read_frame, time_param
from store.engine import open_store
from tests.test_journeys_run import JOURNEY, workspace

AT = datetime(2026, 11, 23, 12, 0)

WAITING = """
[journeys.flow]
trigger = { type = "once", at = 2026-11-23T12:00:00 }
exit_when = ["converted", "unsubscribed"]
channel = "export"

[[journeys.flow.steps]]
name = "note"
send = "lapsing_note"
subject = "Hello"

[[journeys.flow.steps]]
name = "pause"
wait = "5d"

[[journeys.flow.steps]]
name = "story"
send = "lapsing_story"
subject = "A story"
"""


def test_a_customer_who_buys_or_unsubscribes_while_waiting_exits_at_the_next_run(
    tmp_path: Path, store_url: str
) -> None:
    config = load_config(workspace(tmp_path, store_url, WAITING, customers=120))
    entered = run_campaigns(config, at=AT).journeys[0].entered
    engine = open_store(config.store.url, config.root)
    try:
        ids = read_frame(
            engine, "SELECT customer_id FROM journey_entry ORDER BY customer_id LIMIT 3"
        )["customer_id"].tolist()
        buyer, leaver, topic_leaver = ids
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO transaction_line (invoice, customer_id, product_id, quantity, "
                    "unit_price, invoiced_at) VALUES ('X1', :c, 'P1', 1, 9.5, :at)"
                ),
                {"c": buyer, "at": time_param(AT + timedelta(hours=3))},
            )
            connection.execute(
                text(
                    "INSERT INTO suppression (customer_id, reason, created_at) "
                    "VALUES (:c, 'unsubscribed', :at)"
                ),
                {"c": leaver, "at": time_param(AT + timedelta(hours=4))},
            )
            connection.execute(
                text(
                    "INSERT INTO topic_suppression (customer_id, topic, reason, created_at) "
                    "VALUES (:c, 'marketing', 'one-click', :at)"
                ),
                {"c": topic_leaver, "at": time_param(AT + timedelta(hours=5))},
            )
    finally:
        engine.dispose()
    # A day later, four days before the wait ends.
    run = run_campaigns(config, at=AT + timedelta(days=1)).journeys[0]
    assert run.woken_to_exit == 3
    assert run.exited == {"converted": 1, "unsubscribed": 2}
    assert run.by_step == {"pause": 3}
    assert run.messages == 0
    engine = open_store(config.store.url, config.root)
    try:
        moves = read_frame(
            engine,
            "SELECT customer_id, step, outcome, to_step FROM journey_move WHERE seq = 1 "
            "ORDER BY customer_id",
        )
        entries = read_frame(
            engine,
            "SELECT status, COALESCE(exit_reason, '-') AS reason, COUNT(*) AS n FROM journey_entry "
            "GROUP BY status, exit_reason ORDER BY status, reason",
        )
    finally:
        engine.dispose()
    assert [tuple(r) for r in moves.itertuples(index=False)] == [
        (buyer, "pause", "exit: converted", "exit"),
        (leaver, "pause", "exit: unsubscribed", "exit"),
        (topic_leaver, "pause", "exit: unsubscribed", "exit"),
    ]
    assert [tuple(r) for r in entries.itertuples(index=False)] == [
        ("active", "-", entered - 3),
        ("exited", "converted", 1),
        ("exited", "unsubscribed", 2),
    ]
    # The others wait on; when the wait ends, they get the story and the three do not.
    end = run_campaigns(config, at=AT + timedelta(days=5)).journeys[0]
    assert end.by_step == {"pause": entered - 3, "story": entered - 3}
    assert end.exited == {}


def test_a_buyer_waiting_for_a_click_exits_before_the_timeout(
    tmp_path: Path, store_url: str
) -> None:
    config = load_config(workspace(tmp_path, store_url, JOURNEY, customers=60))
    run_campaigns(config, at=AT)
    engine = open_store(config.store.url, config.root)
    try:
        buyer = read_frame(engine, "SELECT MIN(customer_id) AS c FROM journey_entry")["c"][0]
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO transaction_line (invoice, customer_id, product_id, quantity, "
                    "unit_price, invoiced_at) VALUES ('X1', :c, 'P1', 1, 9.5, :at)"
                ),
                {"c": buyer, "at": time_param(AT + timedelta(hours=3))},
            )
    finally:
        engine.dispose()
    run = run_campaigns(config, at=AT + timedelta(hours=6)).journeys[0]
    assert (run.woken_to_exit, run.exited, run.by_step) == (1, {"converted": 1}, {"w": 1})
