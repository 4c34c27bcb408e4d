"""An experiment inside ``campaign run``: variants rendered, the holdout measured but not sent,
exposures recorded once, and a promoted variant sent to everyone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from campaigns.config import load_config
from cli.main import cli
from store.bulk import read_frame
from store.engine import opened_store

CONFIG = """\
[store]
url = "sqlite:///store.db"

[source]
type = "demo"
customers = 400
end = 2026-11-20T00:00:00

[channels.export]
type = "file"
format = "jsonl"

[campaigns.promo]
segments = ["*"]
trigger = { type = "once", at = 2026-11-23T09:00:00 }
channel = "export"
template = "promo"
subject = "Hello {{ customer.first_name | or_default('there') }}"

[campaigns.promo.experiment]
holdout = 0.2

[campaigns.promo.experiment.variants.control]
template = "promo"

[campaigns.promo.experiment.variants.discount]
template = "promo_discount"
parameters = { discount = 15 }
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "promo.txt.j2").write_text("Plain news ({{ variant.name }})\n")
    (tmp_path / "templates" / "promo_discount.txt.j2").write_text(
        "{{ variant.discount }}% off ({{ variant.name }})\n"
    )
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _store(path: Path, sql: str) -> pd.DataFrame:
    config = load_config(path)
    with opened_store(config.store.url, config.root) as engine:
        return read_frame(engine, sql)


def test_a_run_sends_variants_and_exposes_the_holdout(workspace: Path) -> None:
    result = invoke("run", "-c", str(workspace), "--at", "2026-11-23T12:00")
    assert result.exit_code == 0, result.output
    messages = _store(
        workspace, "SELECT customer_id, variant, body_text FROM message WHERE status <> 'held_out'"
    )
    placeholders = _store(workspace, "SELECT customer_id FROM message WHERE status = 'held_out'")
    exposures = _store(workspace, "SELECT customer_id, variant FROM exposure")
    assert len(exposures) == 400
    held = exposures[exposures["variant"] == "holdout"]
    assert f"promo: {len(held):,} held out (experiment)" in result.output
    assert 40 < len(held) < 120  # 20% of 400
    assert len(messages) == 400 - len(held)
    assert not set(messages["customer_id"]) & set(held["customer_id"])
    # The holdout's occasions are recorded (so they are not planned again), never delivered.
    assert set(placeholders["customer_id"]) == set(held["customer_id"])
    # Each message is its customer's arm, rendered from that arm's template and parameters.
    merged = messages.merge(exposures, on="customer_id", suffixes=("", "_exposed"))
    assert (merged["variant"] == merged["variant_exposed"]).all()
    bodies = dict(zip(merged["variant"], merged["body_text"], strict=False))
    assert bodies == {"control": "Plain news (control)\n", "discount": "15% off (discount)\n"}

    # A rerun sends nothing twice and exposes nobody twice.
    again = invoke("run", "-c", str(workspace), "--at", "2026-11-23T12:30")
    assert again.exit_code == 0, again.output
    total = len(messages) + len(placeholders)
    assert _store(workspace, "SELECT COUNT(*) AS n FROM message")["n"].iloc[0] == total
    assert _store(workspace, "SELECT COUNT(*) AS n FROM exposure")["n"].iloc[0] == 400

    report = invoke("report", "promo", "-c", str(workspace), "--format", "json")
    assert [v["exposures"] for v in json.loads(report.output)["variants"]] == [
        int((exposures["variant"] == arm).sum()) for arm in ("control", "discount", "holdout")
    ]


def test_a_dry_run_records_no_exposures(workspace: Path) -> None:
    result = invoke("run", "-c", str(workspace), "--at", "2026-11-23T12:00", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "held out (experiment)" in result.output
    assert _store(workspace, "SELECT COUNT(*) AS n FROM exposure")["n"].iloc[0] == 0


def test_a_promoted_variant_goes_to_everyone_without_new_exposures(workspace: Path) -> None:
    assert invoke("experiment", "promote", "promo", "discount", "-c", str(workspace)).exit_code == 0
    result = invoke("run", "-c", str(workspace), "--at", "2026-11-23T12:00")
    assert result.exit_code == 0, result.output
    messages = _store(workspace, "SELECT variant, body_text FROM message")
    assert len(messages) == 400
    assert set(messages["variant"]) == {"discount"}
    assert set(messages["body_text"]) == {"15% off (discount)\n"}
    assert _store(workspace, "SELECT COUNT(*) AS n FROM exposure")["n"].iloc[0] == 0
