"""The ``campaign`` command end to end on a small demo workspace (CliRunner, real store)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from cli.main import cli

AT = "2026-11-23T12:00"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def demo_workspace(tmp_path: Path) -> Path:
    """A workspace made by ``campaign init``, shrunk to 400 customers with a fixed history end."""
    result = invoke("init", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    config = tmp_path / "ws" / "config.toml"
    text = config.read_text()
    text = text.replace("customers = 5000", "customers = 400\nend = 2026-11-23T00:00:00")
    config.write_text(text)
    return config


def held_out(output: str) -> int:
    """How many customers the winback experiment held out, from a run's notes."""
    line = next(line for line in output.splitlines() if line.endswith("held out (experiment)"))
    return int(line.split()[2])


def deferred(output: str) -> int:
    """Messages a run deferred past its time for quiet hours (they wait for a later run)."""
    lines = [line for line in output.splitlines() if line.endswith("until quiet hours end")]
    return sum(int(line.split(": ")[1].split()[0].replace(",", "")) for line in lines)


def test_init_writes_a_workspace_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "ws"))
    assert result.exit_code == 0
    assert f"created {tmp_path / 'ws' / 'config.toml'}" in result.output
    assert (tmp_path / "ws" / "templates" / "winback.txt.j2").exists()
    assert (tmp_path / "ws" / "templates" / "layout.html.j2").exists()
    again = invoke("init", str(tmp_path / "ws"))
    assert again.exit_code == 1
    assert again.output == (
        f"Error: {tmp_path / 'ws' / 'config.toml'} already exists; choose an empty folder\n"
    )


def test_run_exports_each_message_once(demo_workspace: Path) -> None:
    first = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0] == "Run 1 at 2026-11-23 12:00 UTC"
    assert lines[1] == "Loaded the data source into the store (first use)."
    assert lines[2] == "Segmentation model v1 (fitted now)."
    assert "│ vip-thanks    │ 1 VIP" in first.output
    # Everyone has an email address, so the newsletter (lowest priority) reaches whoever no
    # other campaign took: one message per customer, but for the winback test's holdout.
    holdout = held_out(first.output)
    assert 0 < holdout < 40
    queued = 400 - holdout
    assert lines[-1] == f"Queued {queued} new messages; sent {queued - deferred(first.output)}."

    out = demo_workspace.parent / "out"
    exports = sorted(out.rglob("*-run1.csv")) + sorted(out.rglob("*-run1.jsonl"))
    assert {p.parent.name for p in exports} <= {
        "cart-reminder",
        "newsletter",
        "vip-thanks",
        "winback",
    }
    second = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[0] == "Run 2 at 2026-11-23 12:00 UTC"
    assert "- newsletter: window already planned (window 2026-11-19T08:00Z)" in second.output
    assert second.output.splitlines()[-1] == "Nothing new to send."
    assert sorted(out.rglob("*-run2.*")) == []
    # What waits for the quiet hours to end is exported by the first run after them.
    later = invoke("run", "-c", str(demo_workspace), "--at", "2026-11-24T12:00")
    assert later.exit_code == 0, later.output
    exports += sorted(out.rglob("*-run3.csv")) + sorted(out.rglob("*-run3.jsonl"))
    assert all(p.with_name(p.stem + ".manifest.json").exists() for p in exports)
    messages = pd.concat(
        [
            pd.read_csv(p, dtype=str)
            if p.suffix == ".csv"
            else pd.read_json(p, lines=True, dtype=str)
            for p in exports
        ]
    )
    store = sqlite3.connect(demo_workspace.parent / ".campaign" / "campaign.db")
    query = "SELECT idempotency_key, status FROM message WHERE run_id = 1"
    rows = store.execute(query).fetchall()
    store.close()
    planned = {k for k, _ in rows}
    held = {k for k, s in rows if s == "held_out"}
    first_run = messages[messages["idempotency_key"].isin(planned)]
    # Every message the first run queued was exported once, by it or by the next.
    assert len(first_run) == first_run["customer_id"].nunique() == 400 - holdout
    assert set(first_run["idempotency_key"]) == planned - held
    vip = messages[messages["campaign"] == "vip-thanks"]
    assert vip["subject"].str.endswith(", early access is yours").all()
    keys = messages.set_index("campaign")["idempotency_key"]
    assert keys["newsletter"].str.match(r"^newsletter:C\d{6}:2026-11-19T08:00Z$").all()
    assert keys["winback"].str.match(r"^winback:C\d{6}:inactive-since-20\d\d-\d\d-\d\d$").all()


def test_dry_run_shows_what_the_run_then_does(demo_workspace: Path) -> None:
    dry = invoke("run", "-c", str(demo_workspace), "--at", AT, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[0] == "Dry run at 2026-11-23 12:00 UTC"
    assert dry.output.splitlines()[-1] == f"Would queue {400 - held_out(dry.output)} new messages."
    assert not (demo_workspace.parent / "out").exists()
    real = invoke("run", "-c", str(demo_workspace), "--at", AT)

    # The same campaigns, segments, audiences and message counts, row for row.
    def table(output: str) -> list[list[str]]:
        rows = [line.split("│")[1:5] for line in output.splitlines() if line.startswith("│")]
        return [[cell.strip() for cell in row] for row in rows]

    assert table(dry.output) == table(real.output)


def test_one_campaign_only_and_an_unknown_one(demo_workspace: Path) -> None:
    result = invoke("run", "-c", str(demo_workspace), "--at", AT, "--campaign", "winback")
    assert result.exit_code == 0, result.output
    assert "newsletter" not in result.output
    unknown = invoke("run", "-c", str(demo_workspace), "--at", AT, "--campaign", "nope")
    assert unknown.exit_code == 1
    assert unknown.output == (
        "Error: no campaign called 'nope'; campaigns in the config: cart-reminder, newsletter, "
        "vip-thanks, winback\n"
    )


def test_check_and_status(demo_workspace: Path) -> None:
    check = invoke("check", "-c", str(demo_workspace))
    assert check.exit_code == 0, check.output
    assert check.output == f"{demo_workspace}: OK (4 campaigns, 6 templates, 2 channels)\n"
    invoke("run", "-c", str(demo_workspace), "--at", AT)
    status = invoke("status", "-c", str(demo_workspace), "--at", AT)
    assert status.exit_code == 0, status.output
    assert "Customers: 400" in status.output
    # The winback holdout's occasions are recorded, never delivered.
    assert re.search(r"Outbox: held_out \d+, queued \d+, sent 3\d\d\n", status.output)
    assert "│ newsletter    │ schedule │ 2026-11-26 08:00       │" in status.output
    assert "│ winback       │ inactive │ each run, per customer │" in status.output


def test_check_reports_a_template_typo_with_line(demo_workspace: Path) -> None:
    template = demo_workspace.parent / "templates" / "winback.txt.j2"
    template.write_text("Hello\n{{ customer.frist_name }}\n")
    result = invoke("check", "-c", str(demo_workspace))
    assert result.exit_code == 1
    assert result.output == (
        "Error: campaigns.winback.template: winback.txt.j2:2: 'dict object' has no attribute "
        "'frist_name'\n"
    )


def test_bad_config_is_one_line(demo_workspace: Path) -> None:
    text = demo_workspace.read_text()
    line = text.splitlines().index("k = 4") + 1
    demo_workspace.write_text(text.replace("k = 4", "k = 1"))
    result = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {demo_workspace}:{line}: segmentation.k: must be greater than or equal to 2, "
        "got 1\n"
    )


def test_missing_config_file(tmp_path: Path) -> None:
    result = invoke("run", "-c", str(tmp_path / "config.toml"))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path / 'config.toml'}: config file not found; create one with "
        "'campaign init DIR'\n"
    )


def test_a_malformed_csv_source_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text("when,who,paid\n2024-01-01,a,3\n")
    config = tmp_path / "config.toml"
    config.write_text(
        '[source]\ntype = "files"\n[source.transactions]\npath = "sales.csv"\n'
        '[source.transactions.columns]\ncustomer_id = "Customer ID"\ninvoiced_at = "when"\n'
        'amount = "paid"\n[channels.export]\ntype = "file"\n'
    )
    result = invoke("run", "-c", str(config), "--at", AT)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: transactions file {tmp_path / 'sales.csv'} has no column 'Customer ID' (mapped by "
        "customer_id = 'Customer ID' under [source.transactions.columns]); its columns are: "
        "'when', 'who', 'paid'\n"
    )


def test_a_bad_at_time(demo_workspace: Path) -> None:
    result = invoke("run", "-c", str(demo_workspace), "--at", "yesterday")
    assert result.exit_code == 2
    assert "'yesterday' is not a time; use ISO format such as 2026-11-23T09:00" in result.output


def test_business_names_must_match_the_model(demo_workspace: Path) -> None:
    text = demo_workspace.read_text()
    demo_workspace.write_text(text.replace('4 = "Newcomers"', '4 = "Newcomers"\n7 = "Ghosts"'))
    result = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert result.exit_code == 1
    assert result.output == (
        "Error: segmentation.names: no segment 7; this model has segments 1 to 4\n"
    )
    demo_workspace.write_text(text.replace('4 = "Newcomers"', '4 = "VIP"'))
    result = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert result.output == (
        "Error: segmentation.names: segments 1 and 4 would both be called 'VIP'; give each "
        "segment a different name\n"
    )


def test_plan_preview_and_forecast_write_nothing(demo_workspace: Path) -> None:
    plan = invoke("plan", "-c", str(demo_workspace), "--at", AT)
    assert plan.exit_code == 0, plan.output
    assert plan.output.splitlines()[0] == "Plan at 2026-11-23 12:00 UTC"
    assert "│ newsletter    │ due    │ 2026-11-19T08:00Z │" in plan.output
    assert "│ winback       │ due    │ per customer      │" in plan.output
    assert plan.output.splitlines()[-1] == "- no earlier run: everything is new"

    preview = invoke(
        "preview", "vip-thanks", "-c", str(demo_workspace), "--at", AT, "--sample", "2"
    )
    assert preview.exit_code == 0, preview.output
    headers = [line for line in preview.output.splitlines() if line.startswith("───")]
    assert len(headers) == 2
    assert all("(1 VIP): would send, in the audience" in line for line in headers)
    assert "You have ordered" in preview.output

    forecast = invoke("forecast", "-c", str(demo_workspace), "--at", AT, "--days", "7")
    assert forecast.exit_code == 0, forecast.output
    assert forecast.output.splitlines()[0].startswith("Forecast: 7 days from 2026-11-23 12:00 UTC")
    assert "│ 2026-11-26 │" in forecast.output  # the Thursday newsletter
    assert not (demo_workspace.parent / "out").exists()

    invoke("run", "-c", str(demo_workspace), "--at", AT)
    again = invoke("plan", "-c", str(demo_workspace), "--at", AT)
    assert "│ newsletter    │ window already planned │ 2026-11-19T08:00Z │" in again.output
    changes = again.output.split("Changes since the last run:\n")[1]
    # The newsletter audience is the same; winback customers messaged this spell are done.
    assert "newsletter" not in changes
    assert "winback / " in changes
    assert "no longer in the audience (was" in changes


def test_preview_one_customer_says_why_not(demo_workspace: Path) -> None:
    result = invoke(
        "preview", "winback", "-c", str(demo_workspace), "--at", AT, "--customer", "C000001"
    )
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("─── C000001 (")
    # C000001 is a regular customer: not inactive, so winback is not for them (yet).
    assert first.endswith("not in the audience (segments, condition or trigger)")
    assert "would NOT send (variant " in first
    missing = invoke(
        "preview", "winback", "-c", str(demo_workspace), "--at", AT, "--customer", "X9"
    )
    assert missing.exit_code == 1
    assert missing.output == "Error: no customer 'X9' in the store\n"


def test_check_reports_an_unknown_name_in_a_condition(demo_workspace: Path) -> None:
    text = demo_workspace.read_text()
    demo_workspace.write_text(
        text.replace('where = "email is not null"', 'where = "emial is not null"')
    )
    result = invoke("check", "-c", str(demo_workspace))
    assert result.exit_code == 1
    assert result.output == (
        "Error: campaigns.newsletter.where: column 1: unknown name 'emial'; did you mean 'email'?\n"
    )


def test_do_not_contact_file(demo_workspace: Path) -> None:
    (demo_workspace.parent / "dnc.txt").write_text("C000001\nC000002\n")
    text = demo_workspace.read_text().replace(
        "max_messages_per_customer_per_run = 1",
        'max_messages_per_customer_per_run = 1\ndo_not_contact = "dnc.txt"',
    )
    demo_workspace.write_text(text)
    result = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert result.exit_code == 0, result.output
    queued = 398 - held_out(result.output)
    sent = queued - deferred(result.output)
    assert result.output.splitlines()[-1] == f"Queued {queued} new messages; sent {sent}."
    assert "- newsletter: 2 left out (suppressed)" in result.output


def test_check_reports_a_target_score_that_does_not_exist(demo_workspace: Path) -> None:
    text = demo_workspace.read_text()
    last = 'subject = "This week at Bean & Leaf"\npriority = 0\n'
    target = 'target = { by = "propensity", top = 100 }\n'
    demo_workspace.write_text(text.replace(last, last + target))
    invoke("load", "-c", str(demo_workspace))
    result = invoke("check", "-c", str(demo_workspace))
    assert result.exit_code == 1
    assert result.output == (
        "Error: campaigns.newsletter.target.by: unknown column 'propensity' (scores such as "
        "propensity exist once a model is trained: campaign model train)\n"
    )
