"""A real public e-mail experiment through ``campaign experiment import``, ``track`` and
``report``: Broockman (2013), "Black politicians are more intrinsically motivated to advance
blacks' interests", American Journal of Political Science 57(3).

5,593 US state legislators each received one e-mail from a (fictional) black constituent; at
random it said the sender lived in the legislator's district or out of it, and the outcome is
whether the legislator replied. The data ship in the ``causaldata`` package (MIT; the dataset
``black_politicians``, also used in Huntington-Klein's *The Effect*). It records no dates: every
e-mail is stamped 2010-01-01 and every reply the day after, inside the 14-day window.

Every figure is checked against scipy or statsmodels on the raw rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from scipy import stats as sps

from cli.main import cli
from tests.report_schema import validate_report
from tests.score_reference import score_diff_interval

CONFIG = """\
[store]
url = "sqlite:///store.db"

[source]
type = "demo"
customers = 100

[channels.export]
type = "file"
"""

DESIGN = """
[experiments.broockman]
arms = { in_district = 0.5, out_of_district = 0.5 }
control = "in_district"
baseline_rate = 0.5
minimum_detectable_effect = 0.05
decision = "fixed"
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def legislators() -> pd.DataFrame:
    from causaldata import black_politicians

    frame = black_politicians.load_pandas().data
    return frame.assign(customer_id=[f"L{i:04d}" for i in range(len(frame))])


@pytest.fixture
def email_workspace(tmp_path: Path, legislators: pd.DataFrame) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    arm = legislators["treat_out"].map({0: "in_district", 1: "out_of_district"})
    pd.DataFrame(
        {"variant": arm, "customer_id": legislators["customer_id"], "timestamp": "2010-01-01"}
    ).to_csv(tmp_path / "emails.csv", index=False)
    replied = legislators[legislators["responded"] == 1]
    pd.DataFrame({"customer_id": replied["customer_id"], "timestamp": "2010-01-02"}).to_csv(
        tmp_path / "replies.csv", index=False
    )
    imported = invoke(
        "experiment", "import", "broockman", str(tmp_path / "emails.csv"), "-c", str(config)
    )
    assert imported.exit_code == 0, imported.output
    assert imported.output.splitlines()[0] == (
        f"Imported 5,593 exposures from {tmp_path / 'emails.csv'}."
    )
    tracked = invoke("track", "conversions", str(tmp_path / "replies.csv"), "-c", str(config))
    assert tracked.output == f"Imported 2,365 conversions from {tmp_path / 'replies.csv'}.\n"
    return config


def test_without_a_design_the_figures_are_shown_and_nothing_is_judged(
    email_workspace: Path,
) -> None:
    result = invoke("report", "broockman", "-c", str(email_workspace), "--control", "in_district")
    assert result.exit_code == 0, result.output
    assert "Design not given: the arms' planned shares, the baseline rate" in result.output
    assert result.output.splitlines()[-1].startswith("Verdict: Not judged: the design does not")


def test_the_report_agrees_with_scipy_and_statsmodels(
    email_workspace: Path, legislators: pd.DataFrame
) -> None:
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        proportion_confint,
        proportions_ztest,
    )

    email_workspace.write_text(CONFIG + DESIGN, encoding="utf-8")
    result = invoke("report", "broockman", "-c", str(email_workspace), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    validate_report(report)
    counts = legislators.groupby("treat_out")["responded"].agg(["count", "sum"])
    (n_in, x_in), (n_out, x_out) = counts.loc[0], counts.loc[1]
    assert (n_in, x_in, n_out, x_out) == (2814, 1562, 2779, 803)
    control, out = report["variants"]
    assert (control["exposures"], control["conversions"]) == (2814, 1562)
    assert (out["exposures"], out["conversions"]) == (2779, 803)
    assert out["conversion_rate"] == pytest.approx(803 / 2779, rel=1e-12)
    # statsmodels proportions_ztest([803, 1562], [2779, 2814])
    z, p = proportions_ztest([x_out, x_in], [n_out, n_in])
    assert out["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert out["test"] == "two-proportion z-test"
    # confint_proportions_2indep(..., compare="ratio", method="score", correction=False), minus 1
    low, high = confint_proportions_2indep(
        x_out, n_out, x_in, n_in, compare="ratio", method="score", correction=False
    )
    assert out["rel_lift_ci"] == pytest.approx([low - 1, high - 1], rel=1e-9)
    assert out["rel_lift_ci"][0] > -1
    assert out["abs_lift_ci"] == pytest.approx(
        list(score_diff_interval(x_out, n_out, x_in, n_in, 1.959963984540054)), rel=1e-6
    )
    assert out["newcombe_ci"] == pytest.approx(
        list(confint_proportions_2indep(x_out, n_out, x_in, n_in, method="newcomb")), rel=1e-9
    )
    # The split against the planned 50/50: scipy.stats.chisquare([2814, 2779])
    assert report["srm"]["p_value"] == pytest.approx(sps.chisquare([2814, 2779]).pvalue, rel=1e-12)
    assert report["srm"]["mismatch"] is False
    # Fixed design, 1,565 per arm planned (5 points over 50%): reached, decided once.
    assert report["horizon"]["planned_per_arm"] == 1565
    assert report["horizon"]["reached"] is True
    assert out["decision"]["action"] == "stop"
    assert out["decision"]["basis"] == "fixed-horizon p"
    assert report["verdict"] == (
        "out_of_district lowers conversion by 26.6 points [-29.1, -24.1], p < 0.001: stop it."
    )
    # The one-arm Wilson intervals of the HTML plot: proportion_confint(..., method="wilson")
    page = email_workspace.parent / "broockman.html"
    invoke("report", "broockman", "-c", str(email_workspace), "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2  # rates and split; one day, no lift plot
    assert "Not drawn: every exposure so far is from one day (2010-01-01)" in html
    assert proportion_confint(x_in, n_in, method="wilson")[0] < x_in / n_in
    assert z < 0
