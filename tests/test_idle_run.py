"""A run with nothing due decides so from the last run's watermark, before it reads any data.

Every case runs on the demo workspace (400 customers) on SQLite and on a real PostgreSQL, after
one real run at ``AT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, text

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.idle import NOTHING_NEW, nothing_due
from campaigns.planner import ALREADY_PLANNED, DUE
from campaigns.run import config_hash, plan_run, prepare, run_campaigns
from cli.main import cli
from store.engine import opened_store

AT = datetime(2026, 11, 23, 12)  # a Monday: vip-thanks fired at 09:00 London
NEXT_NEWSLETTER = datetime(2026, 11, 26, 8)  # Thursday 08:00 London (UTC in November)


@pytest.fixture
def ran(tmp_path: Path, store_url: str) -> Config:
    """The demo workspace on ``store_url``, after a first run at ``AT``."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "ws")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    path = tmp_path / "ws" / "config.toml"
    text_ = path.read_text().replace("customers = 5000", "customers = 400")
    text_ = text_.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{store_url}"')
    path.write_text(text_)
    config = load_config(path)
    first = run_campaigns(config, at=AT)
    assert first.nothing_due is None
    assert first.totals.planned > 0
    return config


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement sent to a database while the test runs (SQLite's trace callback and
    PostgreSQL's cursor events, raw connections included)."""
    seen: list[str] = []

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if hasattr(dbapi_connection, "set_trace_callback"):
            dbapi_connection.set_trace_callback(seen.append)

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "connect", on_connect)
    event.listen(Engine, "before_cursor_execute", on_execute)
    yield seen
    event.remove(Engine, "connect", on_connect)
    event.remove(Engine, "before_cursor_execute", on_execute)


def test_an_idle_run_reads_no_customer_data(ran: Config, statements: list[str]) -> None:
    result = run_campaigns(ran, at=AT + timedelta(hours=1))
    assert result.nothing_due is not None
    assert result.nothing_due.startswith("nothing due: no new data since run 1, no schedule window")
    assert result.totals.planned == 0
    assert {row.campaign: row.status for row in result.rows} == {
        "cart-reminder": NOTHING_NEW,
        "vip-thanks": ALREADY_PLANNED,
        "winback": NOTHING_NEW,
        "reorder-reminder": ALREADY_PLANNED,
        "newsletter": ALREADY_PLANNED,
    }
    reads = [s for s in statements if "transaction_line" in s or "FROM customer " in s]
    assert reads
    assert all("max(id)" in s for s in reads), reads
    # The run is recorded, with the watermark it was decided from, and later runs chain on it.
    again = run_campaigns(ran, at=AT + timedelta(hours=2))
    assert again.nothing_due is not None
    assert "since run 1" in again.nothing_due
    assert again.run_id == 3


def test_idle_agrees_with_planning_everything(ran: Config) -> None:
    """Whenever the watermark says nothing is due, the full planner finds nothing to send."""
    with opened_store(ran.store.url, ran.root) as engine:
        first = nothing_due(engine, ran, AT + timedelta(minutes=1), config_hash(ran))
        assert first is not None
        assert AT < first.quiet_until < AT + timedelta(days=30)
        until = first.quiet_until
        for at in (
            AT + timedelta(minutes=1),
            AT + timedelta(hours=5),
            until - timedelta(minutes=2),
        ):
            assert nothing_due(engine, ran, at, config_hash(ran)) is not None, at
            ready = prepare(engine, ran, at, persist=False)
            plans = plan_run(engine, ran, ready, at)
            due = {p.name: len(p.selected) for p in plans if p.status == DUE}
            assert sum(due.values()) == 0, (at, due)
        # Past quiet_until, before the run's time, or with another config, a run plans.
        assert nothing_due(engine, ran, until, config_hash(ran)) is None
        assert nothing_due(engine, ran, AT - timedelta(minutes=1), config_hash(ran)) is None
        assert nothing_due(engine, ran, AT + timedelta(hours=1), "another") is None


def test_new_data_or_a_due_window_makes_a_run_plan(ran: Config) -> None:
    with opened_store(ran.store.url, ran.root) as engine, engine.begin() as connection:
        customer = connection.execute(text("SELECT min(customer_id) FROM customer")).scalar()
        connection.execute(
            text(
                "INSERT INTO customer_event (customer_id, event, occurred_at) "
                "VALUES (:c, 'cart_abandoned', :t)"
            ),
            {"c": customer, "t": AT + timedelta(hours=2)},
        )
    result = run_campaigns(ran, at=AT + timedelta(hours=3))
    assert result.nothing_due is None
    assert any(r.campaign == "cart-reminder" and r.status == DUE for r in result.rows)
    # Once planned, the next run is idle again; the newsletter's next window is not.
    assert run_campaigns(ran, at=AT + timedelta(hours=4)).nothing_due is not None
    weekly = run_campaigns(ran, at=NEXT_NEWSLETTER)
    assert weekly.nothing_due is None
    assert any(r.campaign == "newsletter" and r.status == DUE for r in weekly.rows)


def test_the_summary_says_nothing_was_due(ran: Config) -> None:
    path = str(ran.file)
    shown = CliRunner().invoke(
        cli, ["run", "-c", path, "--at", "2026-11-23T13:00"], catch_exceptions=False
    )
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "Run 2 at 2026-11-23 13:00 UTC"
    assert lines[1] == (
        "Nothing due: no new data since run 1, no schedule window due, and no per-customer "
        "trigger can fire before 2026-11-24 12:00 UTC; the run read no customer data."
    )
    assert "- winback: nothing new since the last run" in lines
    assert lines[-1] == "Nothing new to send."


def _reads_the_log(statements: list[str]) -> list[str]:
    """Statements that read transaction lines other than by id range or the id mark."""
    return [
        s
        for s in statements
        if "transaction_line" in s
        and "max(" not in s.lower()
        and "id >" not in s
        and not s.lstrip().upper().startswith(("INSERT", "DELETE"))
    ]


def test_a_run_with_something_due_reads_no_transaction_log(
    ran: Config, statements: list[str]
) -> None:
    """Features come from the store's aggregates: only lines that arrived since the last run
    are read (by id), to be folded in."""
    with opened_store(ran.store.url, ran.root) as engine, engine.begin() as connection:
        customer = connection.execute(text("SELECT min(customer_id) FROM customer")).scalar()
        connection.execute(
            text(
                "INSERT INTO customer_event (customer_id, event, occurred_at) "
                "VALUES (:c, 'cart_abandoned', :t)"
            ),
            {"c": customer, "t": AT + timedelta(hours=2)},
        )
        connection.execute(
            text(
                "INSERT INTO transaction_line (invoice, customer_id, product_id, quantity, "
                "unit_price, invoiced_at) VALUES ('late-1', :c, 'p', 1, 10.0, :t)"
            ),
            {"c": customer, "t": AT + timedelta(hours=1)},
        )
    statements.clear()
    result = run_campaigns(ran, at=AT + timedelta(hours=3))
    assert result.nothing_due is None
    assert any(r.campaign == "cart-reminder" and r.status == DUE for r in result.rows)
    assert not _reads_the_log(statements), _reads_the_log(statements)
    assert any("transaction_line" in s and "id >" in s for s in statements)
    # A run at a time before the new line cannot use the aggregates: it reads the lines.
    statements.clear()
    with opened_store(ran.store.url, ran.root) as engine:
        prepare(engine, ran, AT + timedelta(minutes=30), persist=False)
    assert _reads_the_log(statements)
