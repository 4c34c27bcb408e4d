"""``campaign segment suggest``: drafts that pass ``campaign check`` as written, on the demo shop
and on the real CDNOW log; holdouts sized as ``campaign experiment plan`` sizes them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigns.experiments.power import sample_size
from campaigns.playbook import HOLDOUT_SHARES, _holdout
from cli.main import cli


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def demo_workspace(tmp_path: Path) -> Path:
    invoke("init", str(tmp_path))
    config = tmp_path / "config.toml"
    text = config.read_text(encoding="utf-8").replace(
        "customers = 5000\nseed = 7", "customers = 1500\nseed = 7\nend = 2026-11-23T00:00:00"
    )
    config.write_text(text, encoding="utf-8")
    return config


def test_demo_drafts_pass_check(tmp_path: Path) -> None:
    config = demo_workspace(tmp_path)
    invoke("segment", "fit", "-c", str(config), "--at", "2026-11-23")
    drafts = tmp_path / "drafts.toml"
    output = invoke("segment", "suggest", "-c", str(config), "--output", str(drafts))
    text = drafts.read_text(encoding="utf-8")
    assert text in output
    parsed = tomllib.loads(text)["campaigns"]
    # One draft per segment, each with one sentence of reasoning and its holdout sizing.
    assert sorted(c["segments"][0] for c in parsed.values()) == [1, 2, 3, 4]
    assert text.count("\n# Segment ") + text.startswith("# Segment ") == 4
    assert text.count("# Holdout: ") == 4
    for campaign in parsed.values():
        experiment = campaign["experiment"]
        assert experiment["holdout"] in HOLDOUT_SHARES
        assert len(experiment["variants"]) == 2
        assert campaign["caps"]
        assert "where" in campaign
    for name in ("suggested_loyalty_1", "suggested_loyalty_1_early_access"):
        assert (tmp_path / "templates" / f"{name}.txt.j2").exists()

    with config.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)
    checked = invoke("check", "-c", str(config))
    assert checked.splitlines()[-1] == (
        f"{config}: OK (9 campaigns, 1 journey, 18 templates, 2 channels)"
    )

    # Asked again, it writes no template over the existing ones and names its campaigns apart.
    again = json.loads(invoke("segment", "suggest", "-c", str(config), "--format", "json"))
    assert again["templates_written"] == []
    assert [d["name"] for d in again["drafts"]] == [f"{name}-suggested" for name in parsed]


def test_holdout_is_the_smallest_share_that_plan_finds_enough() -> None:
    share, sentence = _holdout(100_000, 0.05, 0.01)
    for smaller in (s for s in HOLDOUT_SHARES if s < share):
        held, control = smaller * 100_000, (1 - smaller) / 2 * 100_000
        needed = sample_size(0.05, 0.01, ratio=control / held)
        assert held < needed.control or control < needed.variant  # type: ignore[operator]
    held, control = share * 100_000, (1 - share) / 2 * 100_000
    needed = sample_size(0.05, 0.01, ratio=control / held)
    assert held >= needed.control
    assert control >= needed.variant
    assert sentence.startswith(f"{share:.0%} of 100,000 customers")
    # Too small for any share: 10 %, and the smallest detectable lift is said.
    share, sentence = _holdout(300, 0.05, 0.01)
    assert share == 0.1
    assert "the smallest detectable lift is" in sentence


@pytest.mark.shared_data
def test_cdnow_drafts_pass_check_with_lifetime_value(shared_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""[source]
type = "files"

[source.transactions]
path = "{shared_data / "cdnow" / "CDNOW_master.txt"}"
separator = '\\s+'
date_format = "%Y%m%d"
[source.transactions.columns]
customer_id = "customer_id"
invoiced_at = "date"
quantity = "number_of_cds"
amount = "dollar_value"

[segmentation]
k = 4
stability_refits = 0

[channels.export]
type = "file"
""",
        encoding="utf-8",
    )
    invoke("load", "-c", str(config))
    invoke("model", "train", "clv", "-c", str(config), "--holdout-days", "0")
    invoke("segment", "fit", "-c", str(config), "--at", "1998-07-01")
    drafts = tmp_path / "drafts.toml"
    invoke("segment", "suggest", "-c", str(config), "--output", str(drafts))
    text = drafts.read_text(encoding="utf-8")
    parsed = tomllib.loads(text)["campaigns"]
    assert len(parsed) == 4
    # With a lifetime-value model the winback targets by P(alive) times expected spend.
    winbacks = [c for name, c in parsed.items() if name.startswith("winback")]
    assert winbacks
    assert all(c["target"]["by"] == "p_alive" for c in winbacks)
    with config.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)
    checked = invoke("check", "-c", str(config))
    assert checked.splitlines()[-1] == f"{config}: OK (4 campaigns, 8 templates, 1 channels)"
