"""``campaign report``, ``campaign track`` and ``campaign experiment`` through CliRunner."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from campaigns.config import load_config
from campaigns.experiments import assign_variants, experiments_in, record_exposures
from cli.main import cli
from store.bulk import insert_frame
from store.engine import opened_store
from tests.report_schema import validate_report

CONFIG = """\
[store]
url = "sqlite:///store.db"

[source]
type = "demo"
customers = 300

[channels.export]
type = "file"

[campaigns.winback]
segments = ["*"]
trigger = { type = "schedule", cron = "0 10 * * *" }
channel = "export"
template = "winback"

[campaigns.winback.experiment]
holdout = 0.1
conversions = "tracked"
minimum_detectable_effect = 0.02

[campaigns.winback.experiment.variants.control]
template = "winback"

[campaigns.winback.experiment.variants.discount]
template = "winback_discount"
"""

T0 = datetime(2026, 11, 1, 9)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace whose store holds 8,000 exposures of ``winback``: discount converts at 7%,
    control at 5%, the holdout at 4%."""
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path)
    spec = experiments_in(config)["winback"]
    ids = pd.Series([f"C{i:05d}" for i in range(8000)])
    arms = assign_variants(spec, ids)
    rng = np.random.default_rng(1)
    at = T0 + pd.to_timedelta(rng.integers(0, 5 * 86_400, len(ids)), unit="s")
    converted = rng.random(len(ids)) < arms.map(
        {"control": 0.05, "discount": 0.07, "holdout": 0.04}
    )
    with opened_store(config.store.url, config.root) as engine:
        exposures = {"experiment": "winback", "variant": arms, "customer_id": ids, "exposed_at": at}
        record_exposures(engine, pd.DataFrame(exposures))
        conversions = {
            "customer_id": ids[converted],
            "converted_at": at[converted] + timedelta(days=2),
            "value": rng.gamma(2, 10, int(converted.sum())),
            "source": "tracking",
            "kind": "conversion",
        }
        insert_frame(engine, "conversion", pd.DataFrame(conversions))
    return path


def test_report_prints_the_design_srm_check_tables_and_verdict(workspace: Path) -> None:
    result = invoke("report", "winback", "-c", str(workspace))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Experiment winback: conversion rate, control arm 'control'"
    # sequential_sample_size(0.05, 0.02) = 4,283 per arm (the fixed design's would be 2,209).
    assert lines[1] == (
        "Design: sequential decisions (two-sided), alpha 0.05, minimum detectable effect 2.0 "
        "points; horizon 4,283 exposures per arm (3,577 so far)."
    )
    assert lines[2] == "Sample ratio check: OK (p = 0.875, flagged below 0.001)"
    # Nothing was queued through the outbox here: assigned, none delivered, none failed.
    assert (
        "│ control  │    3,619 │         0 │      0 │      0 │ 0.00% │         171 │ 4.73% │"
        in (result.output)
    )
    assert (
        "│ discount │ +2.10 [+1.02, +3.18] │ +44.4% [+19.4, +74.5] │ <0.001 │   <0.001 │       "
        "0.001 [+0.63, +3.77] │           100.0% │        0.00 pts │ ship     │" in result.output
    )
    assert lines[-2] == (
        "Sending 'control' at all changes conversion by -0.1 points [-1.9, +1.4] against the "
        "holdout, p = 0.880."
    )
    assert lines[-1] == (
        "Verdict: discount raises conversion by 2.1 points [0.6, 3.8], always-valid p = 0.001: "
        "ship it."
    )


def test_report_json_is_complete_and_valid_against_its_schema(workspace: Path) -> None:
    result = invoke("report", "winback", "-c", str(workspace), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    validate_report(data)
    assert list(data) == [
        *("experiment", "control", "primary_metric", "design", "horizon", "srm", "verdict"),
        *("recommended", "notes", "variants"),
    ]
    control, discount, holdout = data["variants"]
    assert (control["variant"], control["exposures"], control["conversions"]) == (
        "control",
        3619,
        171,
    )
    assert control["abs_lift"] is None
    assert control["decision"] is None
    assert discount["abs_lift"] == pytest.approx(244 / 3577 - 171 / 3619)
    # confint_proportions_2indep(244, 3577, 171, 3619, method="newcomb", compare="diff")
    assert discount["newcombe_ci"] == pytest.approx([0.010201981441151326, 0.03181761827513033])
    # The score interval that inverts the z-test (tests/score_reference.py)
    assert discount["abs_lift_ci"] == pytest.approx(
        [0.010227307568048927, 0.03184665804118747], rel=1e-6
    )
    # proportions_ztest([244, 171], [3577, 3619])[1]
    assert discount["p_value"] == pytest.approx(0.0001367333247502693, rel=1e-9)
    assert discount["test"] == "two-proportion z-test"
    assert discount["decision"]["action"] == "ship"
    assert discount["decision"]["basis"] == "always-valid p (mixture SPRT)"
    assert discount["sequential"]["test"] == "mixture SPRT"
    assert discount["revenue"]["test"] == "Welch's t-test"
    assert holdout["variant"] == "holdout"
    assert holdout["role"] == "holdout"
    assert data["srm"]["p_value"] == pytest.approx(0.8749302491044899)
    assert data["srm"]["mismatch"] is False
    assert data["horizon"]["planned_per_arm"] == 4283
    assert data["recommended"] == "discount"


def test_report_against_another_control(workspace: Path) -> None:
    result = invoke(
        "report", "winback", "-c", str(workspace), "--format", "json", "--control", "discount"
    )
    data = json.loads(result.output)
    assert data["control"] == "discount"
    assert data["variants"][1]["variant"] == "control"
    assert data["variants"][1]["abs_lift"] == pytest.approx(171 / 3619 - 244 / 3577)
    assert data["verdict"].startswith("control lowers conversion by 2.1 points")
    assert data["variants"][1]["decision"]["action"] == "stop"


def test_report_writes_a_self_contained_html_page(workspace: Path) -> None:
    page = workspace.parent / "report.html"
    result = invoke("report", "winback", "-c", str(workspace), "--html", str(page))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"Wrote {page}"
    html = page.read_text(encoding="utf-8")
    # Rates and split drawn; the lift over time too (exposures span five days).
    assert html.count('src="data:image/png;base64,') == 3
    assert "http://" not in html
    assert "https://" not in html
    assert "Sample ratio check passed: p = 0.875" in html
    assert "ship it." in html


def test_report_errors_are_one_line(workspace: Path) -> None:
    unknown = invoke("report", "nope", "-c", str(workspace))
    assert unknown.exit_code == 1
    assert unknown.output == "Error: no experiment called 'nope'; experiments: 'winback'\n"
    bad_control = invoke("report", "winback", "-c", str(workspace), "--control", "x")
    assert bad_control.output == (
        "Error: experiment 'winback' has no variant 'x'; its arms: 'control', 'discount', "
        "'holdout'\n"
    )


def test_track_reports_imports_and_refused_rows(workspace: Path) -> None:
    path = workspace.parent / "clicks.csv"
    path.write_text(
        "customer_id,timestamp\nC00001,2026-11-03T10:00:00\nC00002,soon\n", encoding="utf-8"
    )
    result = invoke("track", "clicks", str(path), "-c", str(workspace))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Imported 1 click from {path}.\n"
        "1 row refused:\n"
        "  line 3: bad_timestamp: 'soon' is not an ISO 8601 time\n"
    )


def test_imported_exposures_without_a_design_are_not_judged(workspace: Path) -> None:
    path = workspace.parent / "exposures.jsonl"
    rows = [
        {"experiment": "ext", "variant": v, "customer_id": f"X{i}", "timestamp": "2026-11-02"}
        for i, v in enumerate(["a", "b"] * 20)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = invoke("track", "exposures", str(path), "-c", str(workspace))
    assert result.output == f"Imported 40 exposures from {path}.\n"
    missing = invoke("report", "ext", "-c", str(workspace))
    assert missing.output == (
        "Error: experiment 'ext' has no variant 'control' to use as control; its variants: 'a', "
        "'b'; choose one with --control VARIANT\n"
    )
    report = invoke("report", "ext", "-c", str(workspace), "--control", "a")
    assert report.exit_code == 0, report.output
    lines = report.output.splitlines()
    assert lines[1] == (
        "Design not given: the arms' planned shares, the baseline rate, the minimum detectable "
        "effect. Add them to [experiments.ext] in config.toml; until then nothing is judged "
        "against an invented plan."
    )
    assert "Sample ratio check: not run (no planned shares)." in lines
    assert lines[-1] == (
        "Verdict: Not judged: the design does not give the arms' planned shares and the "
        "baseline rate and the minimum detectable effect. Add them to [experiments.ext] in "
        "config.toml (see docs/experiments.md)."
    )
    data = json.loads(
        invoke("report", "ext", "-c", str(workspace), "--control", "a", "--format", "json").output
    )
    validate_report(data)
    assert data["srm"] == {
        "checked": False,
        "test": None,
        "p_value": None,
        "mismatch": False,
        "observed": {"a": 20, "b": 20},
        "expected": {},
    }
    assert data["variants"][1]["decision"]["action"] == "inconclusive"


def test_plan_prints_sample_sizes(workspace: Path) -> None:
    result = invoke(
        "experiment", "plan", "winback", "-c", str(workspace), "--effect", "0.01",
        "--audience", "20000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "Experiment winback: detect 1.00 points over a 5.00% baseline, alpha 0.05 (two-sided), "
        "power 80%"
    )
    # NormalIndPower().solve_power(proportion_effectsize(0.06, 0.05), power=0.8) = 8142.6
    assert "│ discount │         8,143 │         8,143 │     0.95 points │" in lines
    assert lines[-1] == "Customers to expose in all (every arm, holdout included): 18,096"


def test_promote_is_recorded_and_undone(workspace: Path) -> None:
    result = invoke("experiment", "promote", "winback", "discount", "-c", str(workspace))
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Promoted discount: every customer of experiment winback now gets it. "
        "Undo with: campaign experiment promote winback --undo\n"
    )
    undo = invoke("experiment", "promote", "winback", "--undo", "-c", str(workspace))
    assert undo.output == (
        "Experiment winback runs again: variants are assigned as configured (was discount).\n"
    )
    wrong = invoke("experiment", "promote", "winback", "holdout", "-c", str(workspace))
    assert wrong.exit_code == 1
    assert wrong.output == (
        "Error: experiment 'winback' has no variant 'holdout'; its variants: 'control', "
        "'discount'\n"
    )
    neither = invoke("experiment", "promote", "winback", "-c", str(workspace))
    assert neither.exit_code == 2
    assert "give a VARIANT to promote, or --undo to revert" in neither.output


def test_the_demo_shop_responds_and_the_report_finds_the_true_effect(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        CONFIG.replace('conversions = "tracked"\n', "").replace(
            "customers = 300", "customers = 8000"
        ),
        encoding="utf-8",
    )
    assert invoke("demo", "-c", str(path), "--customers", "8000", "--seed", "3").exit_code == 0
    config = load_config(path)
    spec = experiments_in(config)["winback"]
    with opened_store(config.store.url, config.root) as engine:
        ids = pd.read_sql_query("SELECT customer_id FROM customer", engine)["customer_id"]
        at = datetime.now() + timedelta(days=30)  # after the generated history
        record_exposures(
            engine,
            pd.DataFrame(
                {
                    "experiment": "winback",
                    "variant": assign_variants(spec, ids),
                    "customer_id": ids,
                    "exposed_at": at,
                }
            ),
        )
    result = invoke("experiment", "simulate", "winback", "-c", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Simulated ")
    report = json.loads(invoke("report", "winback", "-c", str(path), "--format", "json").output)
    discount = report["variants"][1]
    # The discount's true lift over this audience: about 2.6 points (the demo's response model).
    low, high = discount["abs_lift_ci"]
    assert low < 0.026 < high
    assert report["recommended"] == "discount"
    again = invoke("experiment", "simulate", "winback", "-c", str(path))
    assert again.output == result.output  # replaced, not added


def test_simulate_needs_the_demo_shop(workspace: Path) -> None:
    result = invoke("experiment", "simulate", "winback", "-c", str(workspace))
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot simulate responses for 'winback': it needs exposed customers of the demo "
        "shop (with their latent groups); run the campaign on the demo source first\n"
    )


def test_a_report_before_any_exposure(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    page = tmp_path / "empty.html"
    result = invoke("report", "winback", "-c", str(path), "--html", str(page))
    assert result.output == (
        "Experiment winback: conversion rate, control arm 'control'\n"
        "Verdict: No exposures yet: nothing to judge.\n"
        f"Wrote {page}\n"
    )
    assert "No exposures yet" in page.read_text(encoding="utf-8")


def test_an_imported_experiments_design_is_validated_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        CONFIG + "\n[experiments.spring]\narms = { control = 0.5 }\nbaseline_rate = 2\n"
        '\n[experiments.other]\narms = { a = 0.5, b = 0.5 }\nhorizon = "soon"\n',
        encoding="utf-8",
    )
    lines = CONFIG.count("\n")
    result = invoke("check", "-c", str(path))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}:{lines + 3}: experiments.spring.arms: needs at least two arms, such as "
        "{ control = 0.5, b = 0.5 }\n"
        f"{path}:{lines + 4}: experiments.spring.baseline_rate: must be less than 1, got 2\n"
        f"{path}:{lines + 8}: experiments.other.horizon: must be a positive number of days or "
        "hours such as '14d' or '48h', got 'soon'\n"
    )


def test_experiment_import_uses_the_design(workspace: Path) -> None:
    design = (
        "\n[experiments.spring]\narms = { control = 0.8, story = 0.2 }\nbaseline_rate = 0.05\n"
        'minimum_detectable_effect = 0.02\ndecision = "fixed"\n'
    )
    workspace.write_text(workspace.read_text() + design, encoding="utf-8")
    path = workspace.parent / "spring.csv"
    rows = ["variant,customer_id,timestamp"]
    rows += [f"control,S{i},2026-11-02" for i in range(80)]
    rows += [f"story,S{i},2026-11-02" for i in range(80, 100)]
    rows += ["discount,S100,2026-11-02"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = invoke("experiment", "import", "spring", str(path), "-c", str(workspace))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Imported 100 exposures from {path}.\n"
        "1 row refused:\n"
        "  line 102: unknown_variant: 'discount' is not an arm of the design ('control', 'story')\n"
    )
    data = json.loads(invoke("report", "spring", "-c", str(workspace), "--format", "json").output)
    validate_report(data)
    # 80/20 as planned: scipy.stats.chisquare([80, 20], [80, 20]).pvalue = 1.0
    assert data["srm"]["p_value"] == pytest.approx(1.0)
    assert data["design"]["planned_shares"] == {"control": 0.8, "story": 0.2}
    assert data["design"]["missing"] == []
    taken = invoke("experiment", "import", "winback", str(path), "-c", str(workspace))
    assert taken.output == (
        "Error: experiment 'winback' belongs to a campaign in the config; its exposures are "
        "recorded by 'campaign run', not imported\n"
    )


def test_the_command_line_lists_every_tracked_kind() -> None:
    from campaigns.experiments.tracking import KINDS
    from cli.experiment import TRACKED

    assert TRACKED == KINDS
