"""The ``campaign`` command end to end on a small demo workspace (CliRunner, real store)."""

from __future__ import annotations

import json
import re
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
    """A workspace made by ``campaign init``, shrunk to 400 customers (the demo shop's history
    ends at the ``--at`` of the first run)."""
    result = invoke("init", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    config = tmp_path / "ws" / "config.toml"
    text = config.read_text()
    text = text.replace("customers = 5000", "customers = 400")
    config.write_text(text)
    return config


def journey_messages(output: str) -> int:
    """Messages the demo's lapsing journey queued in a run, from its line of the notes (it
    messages customers no campaign took, such as the winback experiment's holdout)."""
    found = re.search(r"- journey lapsing: .* (\d+) messages queued", output)
    return int(found.group(1)) if found else 0


def held_out(output: str) -> int:
    """How many customers the winback experiment held out, from a run's notes."""
    line = next(line for line in output.splitlines() if line.endswith("held out (experiment)"))
    return int(line.split()[2])


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


def test_init_in_the_current_folder_says_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("init", ".")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "Next: campaign check && campaign run --dry-run"


def test_a_worker_with_nothing_deliverable_says_why(demo_workspace: Path) -> None:
    # 03:00 UTC in January 2030: quiet hours for everyone, and in the future for the wall clock.
    run = invoke("run", "-c", str(demo_workspace), "--at", "2030-01-10T03:00")
    assert run.exit_code == 0, run.output
    planned = int(run.output.splitlines()[-1].split()[1])
    worker = invoke("worker", "-c", str(demo_workspace), "--once")
    assert worker.exit_code == 0, worker.output
    assert worker.output.splitlines()[-2:] == [
        "Worker stopped: sent 0, failed 0.",
        f"Nothing was deliverable: {planned} messages are deferred until quiet hours end (the "
        "first at 2030-01-10 07:00 UTC).",
    ]


def test_run_exports_each_message_once(demo_workspace: Path) -> None:
    first = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0] == "Run 1 at 2026-11-23 12:00 UTC"
    assert lines[1] == "Loaded the data source into the store (first use)."
    assert lines[2] == "Segmentation model v1 (fitted now)."
    assert "│ vip-thanks       │ 1 VIP" in first.output
    # Everyone has an email address, so the newsletter (lowest priority) reaches whoever no
    # other campaign took: one message per customer, but for the winback test's holdout.
    holdout = held_out(first.output)
    assert 0 < holdout < 40
    # Customers in quiet hours (it is 07:00 in New York) get theirs after 08:00 local time: they
    # are deferred, not sent, and not in the files.
    closing = re.fullmatch(
        r"Planned (\d+) new messages: (\d+) sent, (\d+) deferred until quiet hours end\.",
        lines[-1],
    )
    assert closing is not None, lines[-1]
    planned, sent, deferred = (int(n) for n in closing.groups())
    assert planned == 400 - holdout + journey_messages(first.output) == sent + deferred
    assert deferred > 0

    out = demo_workspace.parent / "out"
    exports = sorted(out.rglob("*-run1.csv")) + sorted(out.rglob("*-run1.jsonl"))
    assert {p.parent.name for p in exports} == {
        "cart-reminder",
        "newsletter",
        "reorder-reminder",
        "vip-thanks",
        "winback",
        "lapsing",
    }
    assert all(p.with_name(p.stem + ".manifest.json").exists() for p in exports)
    messages = pd.concat(
        [
            pd.read_csv(p, dtype=str)
            if p.suffix == ".csv"
            else pd.read_json(p, lines=True, dtype=str)
            for p in exports
        ]
    )
    assert len(messages) == messages["customer_id"].nunique() == sent
    journey = messages[messages["campaign"] == "lapsing"]
    assert journey["idempotency_key"].str.match(r"^lapsing:C\d{6}:entry1:note$").all()
    vip = messages[messages["campaign"] == "vip-thanks"]
    assert vip["subject"].str.endswith(", early access is yours").all()
    keys = messages.set_index("campaign")["idempotency_key"]
    assert keys["newsletter"].str.match(r"^newsletter:C\d{6}:2026-11-19T08:00Z$").all()
    assert keys["winback"].str.match(r"^winback:C\d{6}:inactive-since-20\d\d-\d\d-\d\d$").all()

    second = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[0] == "Run 2 at 2026-11-23 12:00 UTC"
    assert "- newsletter: window already planned (window 2026-11-19T08:00Z)" in second.output
    assert second.output.splitlines()[-1] == "Nothing new to send."
    assert sorted(out.rglob("*-run2.*")) == []

    # An hour later the quiet hours are over: the next run delivers what the first deferred.
    third = invoke("run", "-c", str(demo_workspace), "--at", "2026-11-23T13:00")
    assert third.exit_code == 0, third.output
    assert f"Also sent {deferred} messages queued by earlier runs (deferred or retried)." in (
        third.output
    )
    later = sum(len(pd.read_csv(p, dtype=str)) for p in out.rglob("*-run3.csv")) + sum(
        len(pd.read_json(p, lines=True, dtype=str)) for p in out.rglob("*-run3.jsonl")
    )
    assert later == deferred


def test_dry_run_shows_what_the_run_then_does(demo_workspace: Path) -> None:
    dry = invoke("run", "-c", str(demo_workspace), "--at", AT, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[0] == "Dry run at 2026-11-23 12:00 UTC"
    assert re.fullmatch(
        rf"Would plan {400 - held_out(dry.output)} new messages: \d+ to deliver now, \d+ "
        "deferred until quiet hours end.",
        dry.output.splitlines()[-1],
    )
    assert not (demo_workspace.parent / "out").exists()
    real = invoke("run", "-c", str(demo_workspace), "--at", AT)

    # The same campaigns, segments, audiences, left out, held out and planned, row for row (a
    # dry run does not advance journeys, and says so).
    def table(output: str) -> list[list[str]]:
        rows = [line.split("│")[1:7] for line in output.splitlines() if line.startswith("│")]
        return [[cell.strip() for cell in row] for row in rows if row[0].strip() != "lapsing"]

    assert table(dry.output) == table(real.output)
    assert "journeys are not advanced by a dry run" in dry.output


def test_one_campaign_only_and_an_unknown_one(demo_workspace: Path) -> None:
    result = invoke("run", "-c", str(demo_workspace), "--at", AT, "--campaign", "winback")
    assert result.exit_code == 0, result.output
    assert "newsletter" not in result.output
    unknown = invoke("run", "-c", str(demo_workspace), "--at", AT, "--campaign", "nope")
    assert unknown.exit_code == 1
    assert unknown.output == (
        "Error: no campaign called 'nope'; campaigns in the config: cart-reminder, newsletter, "
        "reorder-reminder, vip-thanks, winback\n"
    )


def test_check_and_status(demo_workspace: Path) -> None:
    check = invoke("check", "-c", str(demo_workspace))
    assert check.exit_code == 0, check.output
    assert check.output == (
        f"{demo_workspace}: OK (5 campaigns, 1 journey, 10 templates, 2 channels)\n"
    )
    invoke("run", "-c", str(demo_workspace), "--at", AT)
    status = invoke("status", "-c", str(demo_workspace), "--at", AT)
    assert status.exit_code == 0, status.output
    assert "Customers: 400" in status.output
    # The winback holdout's occasions are recorded, never delivered.
    assert re.search(
        r"Outbox: 3\d\d messages: \d+ sent, \d+ deferred, 0 queued \(deferred until "
        r"2026-11-23 13:00 UTC at the latest\); \d+ customers held out\.\n",
        status.output,
    ), status.output
    assert "│ newsletter       │ schedule │ 2026-11-26 08:00       │" in status.output
    assert "│ winback          │ inactive │ each run, per customer │" in status.output


def test_check_reports_a_template_typo_with_line(demo_workspace: Path) -> None:
    template = demo_workspace.parent / "templates" / "winback.txt.j2"
    template.write_text("Hello\n{{ customer.frist_name }}\n")
    line = demo_workspace.read_text().splitlines().index('template = "winback"') + 1
    expected = (
        f"Error: {demo_workspace}:{line}: campaigns.winback.template: winback.txt.j2:2: customer "
        "has no attribute 'frist_name'; did you mean 'first_name'?\n"
    )
    result = invoke("check", "-c", str(demo_workspace))
    assert result.exit_code == 1
    assert result.output == expected
    # A run finds it too, before it touches the store: no data loaded, no run recorded.
    run = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert run.exit_code == 1
    assert run.output == expected
    assert not (demo_workspace.parent / ".campaign").exists()


def test_a_missing_template_stops_the_run_before_it_starts(demo_workspace: Path) -> None:
    text = demo_workspace.read_text()
    demo_workspace.write_text(text.replace('template = "newsletter"', 'template = "newsleter"'))
    line = demo_workspace.read_text().splitlines().index('template = "newsleter"') + 1
    templates = demo_workspace.parent / "templates"
    run = invoke("run", "-c", str(demo_workspace), "--at", AT)
    assert run.exit_code == 1
    assert run.output == (
        f"Error: {demo_workspace}:{line}: campaigns.newsletter.template: template "
        f"newsleter.txt.j2 not found in {templates}; did you mean 'newsletter'?\n"
    )
    assert not (demo_workspace.parent / ".campaign").exists()
    status = invoke("status", "-c", str(demo_workspace), "--format", "json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["store_exists"] is False


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
    assert "│ newsletter       │ due    │ 2026-11-19T08:00Z │" in plan.output
    assert "│ winback          │ due    │ per customer      │" in plan.output
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
    assert "│ newsletter       │ window already planned │ 2026-11-19T08:00Z │" in again.output
    changes = again.output.split("Changes since the last run:\n")[1]
    # The same customers are inactive: winback still matches them, and leaves them out as
    # messaged for this spell; the newsletter's window is done.
    assert changes == "- no audience changed since run 1\n"
    assert re.search(
        r"- winback: left out [\d,]+ already in the outbox for this occasion", again.output
    )


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
    planned = 398 - held_out(result.output) + journey_messages(result.output)
    assert result.output.splitlines()[-1].startswith(f"Planned {planned} new messages: ")
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


def test_preview_after_a_run_shows_who_the_campaign_matched_and_why_not(
    demo_workspace: Path,
) -> None:
    # Right after the run, winback is due (per-customer trigger) and matches the same inactive
    # customers, but sends to nobody: the preview samples them and says why, as plan counts it.
    assert invoke("run", "-c", str(demo_workspace), "--at", AT).exit_code == 0
    plan = invoke("plan", "-c", str(demo_workspace), "--at", AT)
    assert re.search(r"│ winback\s+│ due\s+│ per customer", plan.output)
    preview = invoke("preview", "winback", "-c", str(demo_workspace), "--at", AT, "--sample", "3")
    assert preview.exit_code == 0, preview.output
    headers = [line for line in preview.output.splitlines() if line.startswith("───")]
    assert len(headers) == 3
    for header in headers:
        assert re.search(
            r"would NOT send \(variant \w+\), left out \((already in the outbox for this "
            r"occasion|frequency cap)\)$",
            header,
        ), header
