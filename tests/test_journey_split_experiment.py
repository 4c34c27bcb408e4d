"""A random split read as an experiment in ``campaign report JOURNEY``: the entries each arm got
(the draws are the journey's moves), conversion after the draw, each arm against the control
with the statistics of experiments, and a holdout arm that exits."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from campaigns.config import load_config
from campaigns.errors import ConfigError
from campaigns.experiments.stats import Proportion, compare_proportions, holm
from campaigns.journeys.report import journey_report
from campaigns.run import run_campaigns
from cli.main import cli
from store.bulk import read_frame, time_param
from store.engine import open_store
from tests.test_journeys_run import AT, workspace

SPLIT = """
[journeys.flow]
trigger = { type = "once", at = 2026-11-23T12:00:00 }
channel = "export"

[[journeys.flow.steps]]
name = "draw"
random = { discount = 1, story = 1, exit = 1 }

[[journeys.flow.steps]]
name = "discount"
send = "lapsing_discount"
subject = "15% off"
then = "exit"

[[journeys.flow.steps]]
name = "story"
send = "lapsing_story"
subject = "A story"
"""


def test_a_random_split_reports_each_arm_against_the_holdout(
    tmp_path: Path, store_url: str
) -> None:
    config = load_config(workspace(tmp_path, store_url, SPLIT, customers=300))
    assert config.file is not None
    run_campaigns(config, at=AT)
    engine = open_store(config.store.url, config.root)
    try:
        draws = read_frame(
            engine,
            "SELECT customer_id, outcome FROM journey_move WHERE step = 'draw' ORDER BY "
            "customer_id",
        )
        arm = dict(
            zip(draws["customer_id"], draws["outcome"].str.removeprefix("random: "), strict=True)
        )
        by_arm = {
            a: sorted(c for c, x in arm.items() if x == a) for a in ("discount", "story", "exit")
        }
        # Who buys after the draw: 12 of the discount arm, 3 of the story arm, 2 of the holdout.
        buyers = by_arm["discount"][:12] + by_arm["story"][:3] + by_arm["exit"][:2]
        with engine.begin() as connection:
            for number, customer in enumerate(buyers):
                connection.execute(
                    text(
                        "INSERT INTO transaction_line (invoice, customer_id, product_id, quantity, "
                        "unit_price, invoiced_at) VALUES (:i, :c, 'P1', 1, 9.5, :at)"
                    ),
                    {"i": f"X{number}", "c": customer, "at": time_param(AT + timedelta(days=1))},
                )
    finally:
        engine.dispose()
    report = journey_report(config, "flow", AT + timedelta(days=2))
    (split,) = report.splits
    assert split.control == "exit"
    counts = {a.arm: (a.entries, a.converted) for a in split.arms}
    assert counts == {
        "discount": (len(by_arm["discount"]), 12),
        "story": (len(by_arm["story"]), 3),
        "exit": (len(by_arm["exit"]), 2),
    }
    holdout = Proportion(len(by_arm["exit"]), 2)
    expected = {
        a: compare_proportions(holdout, Proportion(len(by_arm[a]), n))
        for a, n in (("discount", 12), ("story", 3))
    }
    lines = {a.arm: a for a in split.arms}
    assert lines["exit"].comparison is None
    assert lines["discount"].comparison == expected["discount"]
    assert lines["story"].comparison == expected["story"]
    adjusted = holm([expected["discount"].p_value or 1.0, expected["story"].p_value or 1.0])
    assert [lines["discount"].p_adjusted, lines["story"].p_adjusted] == adjusted
    assert split.sample_ratio.p_value is not None

    result = CliRunner().invoke(cli, ["report", "flow", "-c", str(config.file), "--format", "json"])
    assert result.exit_code == 0, result.output
    (data,) = json.loads(result.output)["splits"]
    assert [(a["arm"], a["holdout"], a["entries"], a["converted"]) for a in data["arms"]] == [
        ("discount", False, len(by_arm["discount"]), 12),
        ("story", False, len(by_arm["story"]), 3),
        ("exit", True, len(by_arm["exit"]), 2),
    ]
    result = CliRunner().invoke(cli, ["report", "flow", "-c", str(config.file)])
    assert result.exit_code == 0, result.output
    assert "Random split draw: conversion (a purchase after the draw) by arm" in result.output
    assert "exit (holdout)" in result.output
    assert "Sample ratio: " in result.output


def test_a_control_that_is_not_an_arm_is_refused(tmp_path: Path) -> None:
    journey = SPLIT.replace(
        "random = { discount = 1, story = 1, exit = 1 }",
        'random = { discount = 1, story = 1 }\ncontrol = "nothing"',
    )
    with pytest.raises(
        ConfigError,
        match=r"config.toml:\d+: journeys.flow.steps\[1\]: control 'nothing' is not one of the "
        r"arms of random: discount, story$",
    ):
        load_config(workspace(tmp_path, "sqlite:///x.db", journey))
