"""Who is segmented, the make-up of segments by the columns not clustered on (chi-square tests
equal to scipy on a plain pandas crosstab), sizes over time, and the stale --at warning."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import chi2_contingency

from campaigns.config import load_config
from campaigns.planner import NOT_SEGMENTED
from campaigns.run import run_campaigns
from campaigns.segments import assign_segments, segment_report
from cli.main import cli

LINES = """invoice,who,qty,price,when
{rows}"""


def shop_files(tmp_path: Path) -> Path:
    """Twelve customers over 2024; c11 only ever cancelled, c12's only line is a duplicate of
    none (it is fine); the config segments on RFM with k = 2."""
    rows = []
    for i in range(1, 11):
        for order in range(i % 4 + 1):
            day = 1 + (i * 7 + order * 30) % 300
            when = (datetime(2024, 1, 1) + pd.Timedelta(days=day)).strftime("%Y-%m-%d")
            rows.append(f"I{i}-{order},c{i},{1 + i % 3},{5 * i}.00,{when}")
    rows.append("C900,c11,1,20.00,2024-05-01")  # a cancellation: quarantined
    rows.append("C901,c11,2,20.00,2024-06-01")
    rows.append("I12,c12,1,9.00,2024-10-01")
    (tmp_path / "sales.csv").write_text(LINES.format(rows="\n".join(rows)) + "\n")
    config = tmp_path / "config.toml"
    config.write_text(
        """[source]
type = "files"
[source.transactions]
path = "sales.csv"
[source.transactions.columns]
invoice = "invoice"
customer_id = "who"
quantity = "qty"
unit_price = "price"
invoiced_at = "when"

[segmentation]
k = 2
stability_refits = 0

[channels.export]
type = "file"

[campaigns.everyone]
segments = ["*"]
trigger = { type = "once", at = 2025-01-01T09:00:00 }
channel = "export"
template = "hello"

[campaigns.best]
segments = [1]
trigger = { type = "once", at = 2025-01-01T09:00:00 }
channel = "export"
template = "hello"
""",
        encoding="utf-8",
    )
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "hello.txt.j2").write_text(
        "Hello {{ customer.customer_id }} of {{ segment.name }}\n"
    )
    return config


def test_customers_without_a_usable_line_are_not_segmented(tmp_path: Path) -> None:
    config = load_config(shop_files(tmp_path))
    at = datetime(2025, 1, 1, 10)
    assignment = assign_segments(config, at)
    assert assignment.not_segmented == 1
    assert sum(assignment.sizes.values()) == 11  # c1..c10 and c12

    report = segment_report(config, at)
    assert report.data["not_segmented"]["customers"] == 1
    assert report.data["not_segmented"]["customer_ids"] == ["c11"]
    assert "c11" not in report.features.index
    assert sum(s["size"] for s in report.data["segments"]) == 11

    result = run_campaigns(config, at, dry_run=True)
    audiences = {}
    for row in result.rows:
        audiences.setdefault(row.campaign, {})[row.segment] = row.counts.audience
    # "*" reaches the customer without a segment; a campaign naming segment 1 leaves them out
    # and says so.
    assert audiences["everyone"]["0 Not segmented"] == 1
    assert sum(audiences["everyone"].values()) == 12
    # Matched by the trigger and condition, and left out for having no segment: counted.
    best = next(r for r in result.rows if r.campaign == "best" and r.segment_id == 0)
    assert (best.counts.planned, best.counts.left_out) == (0, {"not segmented": 1})


def test_report_prints_who_is_not_segmented(tmp_path: Path) -> None:
    config = shop_files(tmp_path)
    runner = CliRunner()
    fitted = runner.invoke(cli, ["segment", "fit", "-c", str(config), "--at", "2025-01-01"])
    assert fitted.exit_code == 0, fitted.output
    report = runner.invoke(cli, ["segment", "report", "-c", str(config), "--at", "2025-01-01"])
    assert (
        "Not segmented: 1 customers, no usable purchase up to --at (every line quarantined, or "
        'none yet): c11. Campaigns for every segment ("*") still reach them.'
    ) in report.output


def test_sizes_over_time_come_from_the_membership_events(tmp_path: Path) -> None:
    config = load_config(shop_files(tmp_path))
    first = assign_segments(config, datetime(2025, 1, 1))
    second = assign_segments(config, datetime(2025, 9, 1))
    history = segment_report(config, datetime(2025, 9, 1)).data["history"]
    assert [row["at"] for row in history] == ["2025-01-01T00:00:00", "2025-09-01T00:00:00"]
    assert history[0]["sizes"] == {str(k): v for k, v in first.sizes.items()}
    assert history[1]["sizes"] == {str(k): v for k, v in second.sizes.items()}


def test_stale_at_is_warned_about(tmp_path: Path) -> None:
    config = shop_files(tmp_path)
    runner = CliRunner()
    runner.invoke(cli, ["segment", "fit", "-c", str(config), "--at", "2025-01-01"])
    late = runner.invoke(
        cli, ["segment", "report", "-c", str(config), "--at", "2030-01-01", "--format", "json"]
    )
    warnings = json.loads(late.output)["warnings"]
    assert warnings == [
        "--at 2030-01-01 is 1,918 days after the last transaction (2024-10-01): every recency "
        "includes those days, so 'recent' and 'lapsed' compare customers as of a time the data "
        "does not cover; use --at 2024-10-02 to see them as of the end of the data"
    ]
    fresh = runner.invoke(
        cli, ["segment", "report", "-c", str(config), "--at", "2024-12-01", "--format", "json"]
    )
    assert json.loads(fresh.output)["warnings"] == []  # 61 days: within STALE_AFTER_DAYS


@pytest.mark.shared_data
def test_wholesale_makeup_by_channel_and_region(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "wholesale_customers" / "wholesale_customers.csv"
    columns = '["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]'
    config = tmp_path / "config.toml"
    config.write_text(
        f"""[source]
type = "files"
[source.customers]
path = "{path}"
row_ids = true
traits = ["*"]

[segmentation]
k = 2
features = []
traits = {columns}
preprocessing = {{ log = {columns} }}
stability_refits = 0

[channels.export]
type = "file"
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["segment", "fit", "-c", str(config)]).exit_code == 0
    result = runner.invoke(cli, ["segment", "report", "-c", str(config), "--format", "json"])
    data = json.loads(result.output)
    report = segment_report(load_config(config))
    labels = pd.Series(report.model.estimator.predict(report.features), index=report.features.index)
    raw = pd.read_csv(path)
    raw.index = [str(i) for i in range(1, len(raw) + 1)]
    makeup = {part["column"]: part for part in data["makeup"]}
    # Only the columns not clustered on are broken down.
    assert set(makeup) == {"Channel", "Region"}
    for column in ("Channel", "Region"):
        plain = pd.crosstab(raw[column].loc[labels.index], labels)
        ours = makeup[column]
        for segment in plain.columns:
            assert ours["counts"][str(segment)] == {
                str(c): int(n) for c, n in plain[segment].items()
            }
        test = chi2_contingency(plain.to_numpy())
        assert ours["chi2"] == pytest.approx(test.statistic)
        assert ours["p_value"] == pytest.approx(test.pvalue)
        assert ours["dof"] == test.dof
    # The two segments are the two channels (retail vs hotels, restaurants and cafés), which
    # were not clustered on; the regions are spread alike.
    assert makeup["Channel"]["p_value"] < 1e-30
    assert makeup["Channel"]["cramers_v"] > 0.6
    assert makeup["Region"]["p_value"] > 0.05
    assert NOT_SEGMENTED not in set(labels)
