"""Journeys through ``run_campaigns`` on each store backend: entry, a send, a wait for a click
that branches, an exit on a purchase, re-entry, reports and the database's own guarantees."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import exc, text

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.errors import ConfigError
from campaigns.journeys.report import journey_plan, journey_report
from campaigns.run import run_campaigns
from cli.main import cli
from store.bulk import read_frame, time_param
from store.engine import open_store

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)

JOURNEY = """
[journeys.flow]
description = "note, then a discount for clickers, a story for the others"
trigger = { type = "once", at = 2026-11-23T12:00:00 }
exit_when = ["converted"]
channel = "export"

[[journeys.flow.steps]]
name = "note"
send = "lapsing_note"
subject = "Hello {{ customer.first_name | or_default('friend') }}"

[[journeys.flow.steps]]
name = "w"
wait_for = "click"
on = "note"
timeout = "2d"
then = "discount"
else = "story"

[[journeys.flow.steps]]
name = "discount"
send = "lapsing_discount"
then = "exit"

[[journeys.flow.steps]]
name = "story"
send = "lapsing_story"
"""


def workspace(folder: Path, store_url: str, journey: str = JOURNEY, customers: int = 300) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'templates = "{REPO / "templates"}"\n'
        f'[store]\nurl = "{store_url}"\n'
        f'[source]\ntype = "demo"\ncustomers = {customers}\nseed = 7\n'
        "[settings]\nmax_messages_per_customer_per_run = 5\n"
        '[channels.export]\ntype = "file"\nformat = "csv"\ndirectory = "out"\n' + journey
    )
    return path


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Config:
    return load_config(workspace(tmp_path, store_url))


def messages(config: Config) -> list[tuple[str, str]]:
    engine = open_store(config.store.url, config.root)
    try:
        frame = read_frame(
            engine, "SELECT customer_id, \"window\" FROM message WHERE campaign = 'flow'"
        )
    finally:
        engine.dispose()
    return list(zip(frame["customer_id"], frame["window"], strict=True))


def test_a_journey_branches_on_clicks_exits_on_a_purchase_and_sends_each_step_once(
    config: Config,
) -> None:
    first = run_campaigns(config, at=AT)
    (flow,) = first.journeys
    entered = flow.entered
    assert entered > 100
    assert flow.by_step == {"note": entered}
    assert flow.messages == entered
    journey_rows = [r for r in first.rows if r.campaign == "flow"]
    assert sum(r.counts.planned for r in journey_rows) == entered
    sent = messages(config)
    customers = sorted(c for c, _ in sent)
    clickers, buyer = customers[:10], customers[10]
    engine = open_store(config.store.url, config.root)
    try:
        with engine.begin() as connection:
            for number, customer in enumerate(clickers):
                connection.execute(
                    text(
                        "INSERT INTO engagement_event (dedupe_key, kind, message_id, campaign, "
                        "customer_id, occurred_at, source, machine, repeats) SELECT :k, 'click', "
                        "id, campaign, customer_id, :at, 'file', :no, 0 FROM message WHERE "
                        "campaign = 'flow' AND customer_id = :c"
                    ),
                    {
                        "k": f"k{number}",
                        "at": time_param(AT + timedelta(hours=2)),
                        "c": customer,
                        "no": False,
                    },
                )
            connection.execute(
                text(
                    "INSERT INTO transaction_line (invoice, customer_id, product_id, quantity, "
                    "unit_price, invoiced_at) VALUES ('X1', :c, 'P1', 1, 9.5, :at)"
                ),
                {"c": buyer, "at": time_param(AT + timedelta(hours=3))},
            )
        # A customer is never in the same journey twice at once: the database refuses it.
        with pytest.raises(exc.IntegrityError), engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO journey_entry (journey, customer_id, entry_no, occasion, status, "
                    "moves, entered_at) VALUES ('flow', :c, 2, 'again', 'active', 0, :at)"
                ),
                {"c": buyer, "at": time_param(AT)},
            )
    finally:
        engine.dispose()

    # A day later the clickers are woken and get the discount; the buyer exits (converted)
    # while waiting; the others still wait.
    second = run_campaigns(config, at=AT + timedelta(days=1))
    (flow,) = second.journeys
    assert flow.woken == 10
    assert flow.woken_to_exit == 1
    assert flow.exited == {"converted": 1}
    assert flow.by_step == {"w": 11, "discount": 10}
    assert flow.completed == 10
    assert flow.entered == 0

    # At the timeout: everyone else gets the story.
    third = run_campaigns(config, at=AT + timedelta(days=2))
    (flow,) = third.journeys
    assert flow.exited == {}
    assert flow.by_step["story"] == entered - 11
    # Run again at once: no step is due and nothing new came, so the run reads no data at all.
    again = run_campaigns(config, at=AT + timedelta(days=2))
    assert again.nothing_due is not None
    assert again.journeys == []
    assert "journey flow: no step due" in again.notes

    sent = messages(config)
    assert len(sent) == len(set(sent))
    by_step: dict[str, set[str]] = {}
    for customer, window in sent:
        by_step.setdefault(window.split(":")[1], set()).add(customer)
    assert by_step["discount"] == set(clickers)
    assert buyer not in by_step["story"]
    assert len(by_step["story"]) == entered - 11

    report = journey_report(config, "flow", AT + timedelta(days=2))
    assert report.entries == entered
    assert report.exited == {"converted": 1}
    assert report.completed == entered - 1
    assert report.converted >= 1
    steps = {s.name: s for s in report.steps}
    assert steps["w"].outcomes == {
        "clicked": {"discount": 10},
        "timeout": {"story": entered - 11},
        "exit: converted": {"exit": 1},
    }
    assert steps["story"].reached == entered - 11
    # Re-entry "never": customers who finished do not come back.
    later = run_campaigns(config, at=AT + timedelta(days=5))
    assert sum(j.entered for j in later.journeys) == 0


def test_reentry_after_a_period_lets_a_customer_back_once_it_has_passed(
    tmp_path: Path, store_url: str
) -> None:
    journey = JOURNEY.replace('exit_when = ["converted"]', 'reentry = "after 3d"')
    journey = journey.replace(
        'trigger = { type = "once", at = 2026-11-23T12:00:00 }',
        'trigger = { type = "schedule", cron = "0 9 * * *" }',
    )
    config = load_config(workspace(tmp_path, store_url, journey, customers=60))
    first = run_campaigns(config, at=AT)
    entered = first.journeys[0].entered
    assert entered > 0
    run_campaigns(config, at=AT + timedelta(days=2))  # timeouts: story, completed
    assert run_campaigns(config, at=AT + timedelta(days=3)).journeys[0].entered == 0
    back = run_campaigns(config, at=AT + timedelta(days=5, hours=1))
    assert back.journeys[0].entered == entered
    assert "entry2:note" in {w for _, w in messages(config)}


def test_the_cli_reports_plans_and_checks_a_journey(config: Config, tmp_path: Path) -> None:
    assert config.file is not None
    run_campaigns(config, at=AT)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["report", "flow", "-c", str(config.file), "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["steps"][0]["step"] == "note"
    assert data["steps"][0]["messages"]["sent"] == data["entries"]
    page = tmp_path / "flow.html"
    result = runner.invoke(cli, ["report", "flow", "-c", str(config.file), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "Funnel" in page.read_text()
    assert "<svg" in page.read_text()
    assert "Journey flow:" in result.output
    plan = journey_plan(config, AT + timedelta(days=2))
    assert {(p["step"], p["due"]) for p in plan if p["waiting"]} == {("w", data["entries"])}
    result = runner.invoke(
        cli, ["plan", "-c", str(config.file), "--at", "2026-11-25T12:00", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert {(j["step"], j["due"]) for j in json.loads(result.output)["journeys"]} >= {
        ("w", data["entries"])
    }
    result = runner.invoke(cli, ["check", "-c", str(config.file)])
    assert result.exit_code == 0, result.output
    assert "journeys.flow.steps.w: waits for a click that cannot be seen" in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('then = "exit"', 'then = "nowhere"'),
            r"config.toml:37: journeys.flow.steps\[3\].then: step 'discount' goes to 'nowhere'",
        ),
        (
            ('channel = "export"', 'channel = "email"'),
            r"config.toml:\d+: journeys.flow.channel: unknown channel 'email'",
        ),
        (('timeout = "2d"\n', ""), "wait_for needs a timeout"),
        (("[journeys.flow]", "[journeys.Flow]"), "a journey name must be lower-case"),
    ],
)
def test_a_journey_mistake_names_file_line_and_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    journey = JOURNEY.replace(*change)
    if "Flow" in change[1]:
        journey = journey.replace("journeys.flow.", "journeys.Flow.")
    with pytest.raises(ConfigError, match=message):
        load_config(workspace(tmp_path, "sqlite:///x.db", journey))
