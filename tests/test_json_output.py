"""``--format json`` on every command that reports: one option, the same conventions (snake_case
keys, ISO 8601 times, integer counts), and the same count names as the text."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli

AT = "2026-11-23T12:00"
KEY = re.compile(r"^[a-z][a-z0-9_]*$")
COUNTS = (
    "audience",
    "planned",
    "sent",
    "deferred",
    "queued",
    "failed",
    "suppressed",
    "render_failed",
    "held_out",
    "left_out",
)


def as_json(*args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def assert_snake_case(data: dict[str, Any]) -> None:
    bad = [key for key in data if not KEY.match(key)]
    assert not bad, f"keys not in snake_case: {bad}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("json") / "ws"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    config = folder / "config.toml"
    config.write_text(config.read_text().replace("customers = 5000", "customers = 600"))
    return config


@pytest.mark.slow
def test_every_reporting_command_speaks_json(workspace: Path) -> None:
    config = str(workspace)
    run = as_json("run", "-c", config, "--at", AT)
    assert_snake_case(run)
    assert run["at"] == "2026-11-23T12:00:00"
    for row in [run["totals"], *run["rows"]]:
        assert_snake_case(row)
        for name in COUNTS:
            assert isinstance(row[name], int), (name, row)
        assert row["planned"] == sum(
            row[n] for n in ("sent", "deferred", "queued", "failed", "suppressed", "render_failed")
        )
    assert run["totals"]["deferred_until"] == "2026-11-23T13:00:00"

    status = as_json("status", "-c", config, "--at", AT)
    assert_snake_case(status)
    [last] = status["runs"]
    assert {k: last[k] for k in COUNTS if k != "audience" and k != "left_out"} == {
        k: run["totals"][k] for k in COUNTS if k != "audience" and k != "left_out"
    }
    assert status["outbox"]["sent"] == run["totals"]["sent"]
    assert status["next_fires"][1] == {
        "campaign": "vip-thanks",
        "trigger": "schedule",
        "next_fire_at": "2026-11-30T09:00:00",
    }

    plan = as_json("plan", "-c", config, "--at", AT)
    assert_snake_case(plan)
    assert plan["totals"]["planned"] == 0  # the run just did it all

    for args in (
        ("check", "-c", config),
        ("forecast", "-c", config, "--at", AT, "--days", "3"),
        ("segment", "report", "-c", config),
        ("recommend", "evaluate", "-c", config, "--k", "5"),
    ):
        assert_snake_case(as_json(*args))

    assert (
        CliRunner().invoke(cli, ["experiment", "simulate", "winback", "-c", config]).exit_code == 0
    )
    report = as_json("report", "winback", "-c", config)
    assert_snake_case(report)
    trained = CliRunner().invoke(cli, ["model", "train", "propensity", "-c", config])
    assert trained.exit_code == 0, trained.output
    model = as_json("model", "report", "propensity", "-c", config)
    assert_snake_case(model)
    assert model["kind"] == "propensity"
    assert model["version"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", model["created_at"])
