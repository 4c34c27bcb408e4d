"""Edits of a live journey on each store backend: a renamed step (``moved_from``), a removed
step (its entries move to the one that followed it), an edit that would strand customers
(refused by ``campaign run`` and ``campaign check``), and what ``campaign plan`` says first."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigns.config import load_config
from campaigns.journeys.edits import StrandedError, plan_edit
from campaigns.journeys.report import edit_plan
from campaigns.run import run_campaigns
from cli.main import cli
from store import journeys as store
from store.bulk import read_frame
from store.engine import open_store
from tests.test_journeys_run import JOURNEY, workspace

AT = datetime(2026, 11, 23, 12, 0)

PAUSED = """
[journeys.flow]
trigger = { type = "once", at = 2026-11-23T12:00:00 }
channel = "export"

[[journeys.flow.steps]]
name = "note"
send = "lapsing_note"
subject = "Hello"

[[journeys.flow.steps]]
name = "pause"
wait = "3d"

[[journeys.flow.steps]]
name = "story"
send = "lapsing_story"
subject = "A story"
"""


def rows(url: str, root: Path, sql: str) -> list[tuple[object, ...]]:
    engine = open_store(url, root)
    try:
        return [tuple(r) for r in read_frame(engine, sql).itertuples(index=False)]
    finally:
        engine.dispose()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_renamed_step_keeps_its_entries_and_their_clicks(tmp_path: Path, store_url: str) -> None:
    path = workspace(tmp_path, store_url, customers=120)
    entered = run_campaigns(load_config(path), at=AT).journeys[0].entered
    assert entered > 0
    # The wait is renamed, and so is the note its entries wait for a click on.
    edit(path, 'name = "w"', 'name = "clicked"\nmoved_from = "w"')
    edit(path, 'name = "note"', 'name = "hello"\nmoved_from = ["note"]')
    edit(path, 'on = "note"', 'on = "hello"')
    config = load_config(path)
    planned = edit_plan(config, AT + timedelta(days=1))
    assert [p["text"] for p in planned] == [
        "flow: step 'note' renamed 'hello' (moved_from): 0 customers",
        f"flow: step 'w' renamed 'clicked' (moved_from): {entered:,} customers",
    ]
    result = CliRunner().invoke(
        cli, ["plan", "-c", str(path), "--at", "2026-11-24T12:00"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert (
        "Journey edits the next run applies to the customers inside:\n"
        "- flow: step 'note' renamed 'hello' (moved_from): 0 customers\n"
        f"- flow: step 'w' renamed 'clicked' (moved_from): {entered:,} customers\n"
    ) in result.output
    run = run_campaigns(config, at=AT + timedelta(days=1)).journeys[0]
    assert [(c.step, c.to, c.customers) for c in run.edits] == [
        ("note", "hello", 0),
        ("w", "clicked", entered),
    ]
    assert f"edited: step 'w' renamed 'clicked' (moved_from): {entered:,} customers" in (
        run.sentence()
    )
    moves = rows(
        config.store.url,
        config.root,
        "SELECT step, outcome, to_step, COUNT(*) FROM journey_move WHERE outcome = 'edited' "
        "GROUP BY step, outcome, to_step",
    )
    assert moves == [("w", "edited", "clicked", entered)]
    # Applied once: the next run finds the definition it stored and nothing to move.
    assert edit_plan(config, AT + timedelta(days=1)) == []
    again = run_campaigns(config, at=AT + timedelta(days=1, hours=1))
    assert all(not j.edits for j in again.journeys)
    # The renamed wait times out as it would have: the story goes to everyone, once.
    run_campaigns(config, at=AT + timedelta(days=2))
    sent = rows(
        config.store.url,
        config.root,
        'SELECT "window", COUNT(*) FROM message WHERE campaign = \'flow\' GROUP BY "window" '
        'ORDER BY "window"',
    )
    assert sent == [("entry1:note", entered), ("entry1:story", entered)]


def test_a_removed_step_sends_its_entries_to_the_step_that_followed_it(
    tmp_path: Path, store_url: str
) -> None:
    path = workspace(tmp_path, store_url, PAUSED, customers=120)
    entered = run_campaigns(load_config(path), at=AT).journeys[0].entered
    edit(path, '[[journeys.flow.steps]]\nname = "pause"\nwait = "3d"\n', "")
    config = load_config(path)
    planned = edit_plan(config, AT + timedelta(days=1))
    assert [p["text"] for p in planned] == [
        f"flow: step 'pause' removed: {entered:,} customers move to 'story'"
    ]
    run = run_campaigns(config, at=AT + timedelta(days=1)).journeys[0]
    assert [(c.kind, c.step, c.to, c.customers) for c in run.edits] == [
        ("removed", "pause", "story", entered)
    ]
    # They arrive at the story now, and the run takes it.
    assert run.by_step == {"story": entered}
    assert run.completed == entered
    moves = rows(
        config.store.url,
        config.root,
        "SELECT step, to_step, COUNT(*) FROM journey_move WHERE outcome = 'edited' "
        "GROUP BY step, to_step",
    )
    assert moves == [("pause", "story", entered)]


def test_removing_the_rest_of_a_journey_completes_the_entries_inside(
    tmp_path: Path, store_url: str
) -> None:
    path = workspace(tmp_path, store_url, PAUSED, customers=80)
    entered = run_campaigns(load_config(path), at=AT).journeys[0].entered
    text = path.read_text()
    path.write_text(text[: text.index('[[journeys.flow.steps]]\nname = "pause"')])
    config = load_config(path)
    assert [p["text"] for p in edit_plan(config, AT + timedelta(days=1))] == [
        f"flow: step 'pause' removed: {entered:,} customers complete the journey",
        "flow: step 'story' removed: 0 customers complete the journey",
    ]
    run = run_campaigns(config, at=AT + timedelta(days=1)).journeys[0]
    assert run.edits[0].customers == entered
    statuses = rows(
        config.store.url,
        config.root,
        "SELECT status, COUNT(*) FROM journey_entry GROUP BY status",
    )
    assert statuses == [("completed", entered)]


def test_an_edit_that_strands_customers_is_refused_by_run_check_and_shown_by_plan(
    tmp_path: Path, store_url: str
) -> None:
    path = workspace(tmp_path, store_url, customers=80)
    entered = run_campaigns(load_config(path), at=AT).journeys[0].entered
    # The wait_for branches: its entries have no single next step.
    start = path.read_text().index('[[journeys.flow.steps]]\nname = "w"')
    end = path.read_text().index('[[journeys.flow.steps]]\nname = "discount"')
    text = path.read_text()
    path.write_text(text[:start] + text[end:])
    message = (
        f"an edit of a live journey would strand customers (nothing was run):\n"
        f"- journeys.flow: step 'w': {entered:,} customers would be stranded: it is no longer "
        "in the journey and it branches, so it has no single next step to move them to; if a "
        "step replaces it, say so with moved_from = 'w' on that step"
    )
    config = load_config(path)
    with pytest.raises(StrandedError) as raised:
        run_campaigns(config, at=AT + timedelta(days=1))
    assert str(raised.value) == message
    runner = CliRunner()
    for command in (["run", "--at", "2026-11-24T12:00"], ["check"]):
        result = runner.invoke(cli, [*command, "-c", str(path)])
        assert result.exit_code == 1, result.output
        assert f"Error: {message}" in result.output
    result = runner.invoke(cli, ["plan", "-c", str(path), "--at", "2026-11-24T12:00"])
    assert result.exit_code == 0, result.output
    assert "(refused: the run will not start)" in result.output
    result = runner.invoke(
        cli, ["plan", "-c", str(path), "--at", "2026-11-24T12:00", "--format", "json"]
    )
    (stranded,) = json.loads(result.output)["journey_edits"]
    assert stranded["change"] == "stranded"
    assert stranded["customers"] == entered
    # Nothing moved, and the old definition is still the stored one.
    assert rows(config.store.url, config.root, "SELECT COUNT(*) FROM journey_move") == [(entered,)]


def test_a_wait_for_that_now_watches_another_message_strands_its_entries() -> None:
    config = load_config_text(JOURNEY)
    journey = config.journeys["flow"]
    from campaigns.journeys.edits import definition

    stored = definition(journey)
    changed = load_config_text(
        JOURNEY.replace('then = "exit"', 'then = "exit"\n')
        .replace('on = "note"', 'on = "discount2"')
        .replace(
            '[[journeys.flow.steps]]\nname = "w"',
            '[[journeys.flow.steps]]\nname = "discount2"\nsend = "lapsing_discount"\n\n'
            '[[journeys.flow.steps]]\nname = "w"',
        )
    ).journeys["flow"]
    found = plan_edit("flow", changed, stored, {"w": 7})
    assert [s.sentence() for s in found.stranded] == [
        "journeys.flow: step 'w': 7 customers would be stranded: they wait for a click on step "
        "'note''s message, and steps[3].on is now 'discount2'; if 'discount2' is 'note' "
        "renamed, say so with moved_from = 'note' on it"
    ]
    assert plan_edit("flow", changed, stored, {"w": 0}).stranded == []


def load_config_text(journey: str):  # type: ignore[no-untyped-def]
    import tempfile

    folder = Path(tempfile.mkdtemp())
    return load_config(workspace(folder, "sqlite:///x.db", journey))


def test_moved_from_mistakes_name_the_key() -> None:
    with pytest.raises(Exception, match=r"steps\[2\].moved_from: 'note' is still a step"):
        load_config_text(JOURNEY.replace('name = "w"', 'name = "w"\nmoved_from = "note"'))


def test_an_edit_applied_twice_moves_each_entry_once(tmp_path: Path, store_url: str) -> None:
    path = workspace(tmp_path, store_url, PAUSED, customers=60)
    config = load_config(path)
    entered = run_campaigns(config, at=AT).journeys[0].entered
    engine = open_store(config.store.url, config.root)
    try:
        move = store.EditMove("pause", "story", AT + timedelta(days=1))
        steps = [{"name": "note"}, {"name": "story"}]
        first = store.apply_edit(engine, "flow", [move], steps, AT + timedelta(days=1), 2)
        # A replay (a second run that read the old definition) finds nobody left at the step.
        second = store.apply_edit(engine, "flow", [move], steps, AT + timedelta(days=1), 3)
        assert (first, second) == ([entered], [0])
        assert store.stored_definition(engine, "flow") == steps
    finally:
        engine.dispose()
    edited = rows(
        config.store.url,
        config.root,
        "SELECT COUNT(*), COUNT(DISTINCT entry_id) FROM journey_move WHERE outcome = 'edited'",
    )
    assert edited == [(entered, entered)]
