"""``campaign preview JOURNEY --customer ID``: one customer walked through a journey from a time,
with every message rendered, on a real store; nothing is written."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from campaigns.config import load_config
from campaigns.run import run_campaigns
from cli.main import cli
from store.bulk import read_frame, time_param
from store.engine import open_store
from tests.test_journeys_run import AT, JOURNEY, workspace

#: The flow journey of the run tests, entered only by customers with two or more purchases.
PICKY = JOURNEY.replace(
    'exit_when = ["converted"]', 'where = "frequency >= 2"\nexit_when = ["converted"]'
)


def _invoke(config_file: Path, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["preview", "flow", "-c", str(config_file), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def _customers(url: str, root: Path) -> tuple[str, str]:
    """A customer the journey's condition selects and one it does not."""
    engine = open_store(url, root)
    try:
        counts = read_frame(
            engine,
            "SELECT customer_id, COUNT(DISTINCT invoice) AS n FROM transaction_line "
            "GROUP BY customer_id ORDER BY customer_id",
        )
    finally:
        engine.dispose()
    many = counts.loc[counts["n"] >= 2, "customer_id"].astype(str)
    one = counts.loc[counts["n"] == 1, "customer_id"].astype(str)
    return many.iloc[0], one.iloc[0]


def _store_rows(url: str, root: Path) -> tuple[int, int, int]:
    engine = open_store(url, root)
    try:
        with engine.connect() as connection:
            return tuple(  # type: ignore[return-value]
                int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
                for table in ("journey_entry", "journey_move", "message")
            )
    finally:
        engine.dispose()


def test_a_customer_is_walked_through_every_step_with_each_message_and_nothing_is_written(
    tmp_path: Path, store_url: str
) -> None:
    config_file = workspace(tmp_path, store_url, PICKY)
    config = load_config(config_file)
    # The plan loads the data; the preview itself writes nothing.
    assert (
        CliRunner()
        .invoke(cli, ["plan", "-c", str(config_file), "--at", "2026-11-23T12:00"])
        .exit_code
        == 0
    )
    before = _store_rows(store_url, config.root)
    enters, stays_out = _customers(store_url, config.root)
    output = _invoke(config_file, "--customer", enters, "--at", "2026-11-23T12:00")
    lines = output.splitlines()
    assert lines[1] == (
        "Enters now (entry 1): trigger once (at = 2026-11-23 12:00:00), where "
        "'frequency >= 2' holds (2026-11-23T12:00Z)"
    )
    steps = [line for line in lines if line.startswith("2026-")]
    assert steps == [
        "2026-11-23 12:00  note (send): sent -> w",
        "2026-11-25 12:00  w (wait_for): timeout (waiting since 2026-11-23 12:00) -> story; "
        "not taken: clicked -> discount",
        "2026-11-25 12:00  story (send): sent -> completed",
    ]
    assert lines[3].startswith("    Subject: Hello ")
    assert "End: completed" in lines
    assert _store_rows(store_url, config.root) == before

    data = json.loads(
        _invoke(
            config_file,
            "--customer",
            enters,
            "--at",
            "2026-11-23T12:00",
            "--assume",
            "click",
            "--format",
            "json",
        )
    )
    (walk,) = data
    assert walk["enters"] is True
    assert [(s["step"], s["outcome"], s["to"]) for s in walk["steps"]] == [
        ("note", "sent", "w"),
        ("w", "clicked (assumed)", "discount"),
        ("discount", "sent", "completed"),
    ]
    assert walk["steps"][0]["message"]["subject"].startswith("Hello ")
    assert walk["steps"][0]["message"]["status"] == "queued"
    assert walk["steps"][1]["not_taken"] == [{"outcome": "timeout", "to": "story"}]
    assert walk["steps"][2]["message"]["text"]
    assert walk["end"] == "completed"

    # A customer the condition leaves out does not enter, and the preview says why.
    output = _invoke(config_file, "--customer", stays_out, "--at", "2026-11-23T12:00")
    assert output.splitlines()[1] == (
        "Does not enter: its condition 'frequency >= 2' does not hold for them"
    )
    (walk,) = json.loads(
        _invoke(
            config_file, "--customer", stays_out, "--at", "2026-11-23T12:00", "--format", "json"
        )
    )
    assert (walk["enters"], walk["steps"], walk["end"]) == (False, [], "")
    assert _store_rows(store_url, config.root) == before


def test_a_customer_inside_starts_at_their_step_and_a_click_already_seen_takes_then(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = load_config(workspace(tmp_path, url))
    assert config.file is not None
    run_campaigns(config, at=AT)
    engine = open_store(url, config.root)
    try:
        inside = read_frame(
            engine, "SELECT customer_id FROM journey_entry ORDER BY customer_id LIMIT 2"
        )["customer_id"].tolist()
        clicker, waiter = str(inside[0]), str(inside[1])
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO engagement_event (dedupe_key, kind, message_id, campaign, "
                    "customer_id, occurred_at, source, machine, repeats) SELECT 'k', 'click', "
                    "id, campaign, customer_id, :at, 'file', :no, 0 FROM message WHERE "
                    "campaign = 'flow' AND customer_id = :c"
                ),
                {"at": time_param(AT + timedelta(hours=2)), "c": clicker, "no": False},
            )
    finally:
        engine.dispose()
    later = "2026-11-24T12:00"
    (clicked, waiting) = json.loads(
        _invoke(
            config.file,
            "--customer",
            clicker,
            "--customer",
            waiter,
            "--at",
            later,
            "--format",
            "json",
        )
    )
    assert clicked["why"] == (
        "Inside since 2026-11-23 12:00 (entry 1), at step w since 2026-11-23 12:00"
    )
    assert [(s["step"], s["at"], s["outcome"], s["to"]) for s in clicked["steps"]] == [
        ("w", "2026-11-24T12:00:00", "clicked", "discount"),
        ("discount", "2026-11-24T12:00:00", "sent", "completed"),
    ]
    assert [(s["step"], s["at"], s["outcome"]) for s in waiting["steps"]] == [
        ("w", "2026-11-25T12:00:00", "timeout"),
        ("story", "2026-11-25T12:00:00", "sent"),
    ]


def test_a_journey_preview_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    config_file = workspace(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", customers=40)
    runner = CliRunner()
    result = runner.invoke(cli, ["preview", "flow", "-c", str(config_file)])
    assert result.exit_code == 2
    assert "Error: flow is a journey: preview it for a customer with --customer ID" in result.output
    result = runner.invoke(
        cli, ["preview", "flow", "-c", str(config_file), "--customer", "C000001", "--assume", "w2"]
    )
    assert result.exit_code == 1
    assert result.output == (
        "Error: --assume 'w2': neither a wait_for step of journey 'flow' (w) nor one of "
        "click, open, conversion, left_segment\n"
    )
    result = runner.invoke(cli, ["preview", "flow", "-c", str(config_file), "--customer", "NOPE"])
    assert result.exit_code == 1
    assert result.output == "Error: no customer 'NOPE' in the store\n"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_campaign_preview_prints_in_both_formats(tmp_path: Path, fmt: str) -> None:
    config_file = workspace(
        tmp_path,
        f"sqlite:///{tmp_path / 'store.db'}",
        JOURNEY + '\n[campaigns.hello]\nsegments = ["*"]\n'
        'trigger = { type = "once", at = 2026-11-23T12:00:00 }\n'
        'channel = "export"\ntemplate = "lapsing_note"\nsubject = "Hi"\n',
        customers=40,
    )
    result = CliRunner().invoke(
        cli,
        [
            "preview",
            "hello",
            "-c",
            str(config_file),
            "--at",
            "2026-11-23T12:00",
            "--sample",
            "1",
            "--format",
            fmt,
        ],
    )
    assert result.exit_code == 0, result.output
    if fmt == "json":
        (one,) = json.loads(result.output)
        assert one["subject"] == "Hi"
        assert one["would_send"] is True
    else:
        assert "Subject: Hi" in result.output
