"""``campaign simulate JOURNEY --at TIME`` on the demo workspace: simulated people click the
journey's note through the real endpoint at that time, so the next ``campaign run --at`` takes
the click branch; simulating again answers only new messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from store.bulk import read_frame
from store.engine import open_store


@pytest.mark.slow
def test_simulated_clicks_between_runs_take_the_click_branch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    invoke("init", ".")
    invoke("run", "--at", "2026-11-23T12:00")
    invoke("run", "--at", "2026-11-24T12:00")
    # A campaign's people answer when the simulation runs: --at is a journey's.
    refused = runner.invoke(cli, ["simulate", "newsletter", "--at", "2026-11-25T18:00"])
    assert refused.exit_code == 1
    assert "--at applies to a journey's simulation; 'newsletter' is a campaign" in refused.output
    first = invoke("simulate", "lapsing", "--at", "2026-11-25T18:00")
    assert first.startswith("Simulated people answered ")
    engine = open_store("sqlite:///.campaign/campaign.db", tmp_path)
    try:
        events = read_frame(
            engine,
            "SELECT kind, occurred_at, machine, COUNT(*) AS n FROM engagement_event "
            "WHERE campaign = 'lapsing' GROUP BY kind, occurred_at, machine",
        )
        purchases = read_frame(
            engine,
            "SELECT COUNT(*) AS n FROM transaction_line WHERE invoice LIKE 'SIM-journey-%'",
        )["n"][0]
    finally:
        engine.dispose()
    clicks = events[(events["kind"] == "click") & ~events["machine"].astype(bool)]
    assert len(clicks) == 1
    assert str(clicks["occurred_at"].iloc[0]).startswith("2026-11-25 18:00:00")
    clicked = int(clicks["n"].iloc[0])
    assert clicked > 0
    # Again, as of the same time: the same messages, answered the same way, add nothing.
    invoke("simulate", "lapsing", "--at", "2026-11-25T18:00")
    engine = open_store("sqlite:///.campaign/campaign.db", tmp_path)
    try:
        again = read_frame(
            engine,
            "SELECT COUNT(*) AS n FROM engagement_event WHERE campaign = 'lapsing' "
            "AND kind = 'click'",
        )["n"][0]
        purchases_again = read_frame(
            engine,
            "SELECT COUNT(*) AS n FROM transaction_line WHERE invoice LIKE 'SIM-journey-%'",
        )["n"][0]
    finally:
        engine.dispose()
    assert (again, purchases_again) == (clicked, purchases)
    run = json.loads(invoke("run", "--at", "2026-11-27T12:00", "--format", "json"))
    (lapsing,) = [j for j in run["journeys"] if j["journey"] == "lapsing"]
    assert lapsing["moves_by_step"]["clicked"] > clicked
    report = json.loads(invoke("report", "lapsing", "--format", "json"))
    (wait,) = [s for s in report["steps"] if s["step"] == "clicked"]
    taken = {(o["outcome"], o["to"]): o["entries"] for o in wait["outcomes"]}
    assert 0 < taken[("clicked", "discount")] <= clicked
    assert taken[("timeout", "story")] > 0
