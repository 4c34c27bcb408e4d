"""``campaign pause``, ``resume``, ``worker`` and the delivery side of ``run`` and ``status``,
through CliRunner on a real store; and the SQLite run lock."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from campaigns.delivery.control import paused_since
from cli.main import cli
from store import outbox
from store.engine import opened_store
from store.locks import run_lock
from tests.delivery_kit import EVERYONE, make_workspace

AT = "2026-11-23T12:00"
CHANNELS = '[channels.mail]\ntype = "file"\nformat = "jsonl"\ndirectory = "out"\n'


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def store_url(config: Path) -> str:
    return f"sqlite:///{config.parent / '.campaign' / 'campaign.db'}"


def test_pause_holds_delivery_until_resume_and_a_worker_delivers(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws", CHANNELS, EVERYONE, customers=50)
    paused = invoke("pause", "-c", str(config))
    assert paused.exit_code == 0, paused.output
    with opened_store(store_url(config)) as engine:
        since = paused_since(engine)
    assert since is not None
    assert paused.output == (
        f"Delivery paused since {since:%Y-%m-%d %H:%M:%S} UTC: runs and workers send nothing "
        "until campaign resume.\n"
    )
    run = invoke("run", "-c", str(config), "--at", AT)
    assert run.exit_code == 0, run.output
    lines = run.output.splitlines()
    assert lines[-2:] == [
        "- delivery is paused (campaign resume): queued messages wait in the outbox",
        "Planned 50 new messages: 0 sent, 50 queued.",
    ]
    status = invoke("status", "-c", str(config), "--at", AT)
    assert "Outbox: 50 messages: 0 sent, 50 queued.\n" in status.output
    assert (
        f"Delivery: paused since {since:%Y-%m-%d %H:%M:%S} UTC (campaign resume to send)\n"
        in status.output
    )
    idle = invoke("worker", "-c", str(config), "--once")
    assert idle.output.endswith(
        "delivery is paused (campaign resume)\nWorker stopped: sent 0, failed 0.\n"
    )

    resumed = invoke("resume", "-c", str(config))
    assert resumed.output == (
        f"Delivery resumed (paused since {since:%Y-%m-%d %H:%M:%S} UTC); 50 messages queued.\n"
    )
    assert invoke("resume", "-c", str(config)).output == (
        "Delivery was not paused; 50 messages queued.\n"
    )
    worker = invoke("worker", "-c", str(config), "--once")
    assert worker.exit_code == 0, worker.output
    assert worker.output.splitlines()[-1] == "Worker stopped: sent 50, failed 0."
    exports = sorted(p.name for p in (config.parent / "out" / "newsletter").iterdir())
    assert len(exports) == 2
    assert exports[0].endswith(".jsonl")
    assert exports[1].endswith(".manifest.json")
    status = invoke("status", "-c", str(config), "--at", AT)
    assert "Outbox: 50 messages: 50 sent, 0 queued.\nDelivery: running\n" in status.output


def test_status_lists_the_last_delivery_errors(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws", CHANNELS, EVERYONE, customers=20)
    invoke("pause", "-c", str(config))
    invoke("run", "-c", str(config), "--at", AT)
    with opened_store(store_url(config)) as engine:
        outbox.mark_failed(engine, [3], ["550 5.1.1 No such user here"])
    status = invoke("status", "-c", str(config), "--at", AT)
    assert "Last delivery errors" in status.output
    row = next(line for line in status.output.splitlines() if "No such user" in line)
    assert row.split("│")[1:-1] == [
        " newsletter ",
        f" {row.split('│')[2].strip()} ",
        " mail    ",
        " failed ",
        "        0 ",
        " 550 5.1.1 No such user here ",
    ]


def test_a_second_run_on_sqlite_stops_with_who_holds_the_lock(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws", CHANNELS, EVERYONE, customers=20)
    database = config.parent / ".campaign" / "campaign.db"
    with opened_store(store_url(config)) as engine, run_lock(engine):
        holder = Path(f"{database}.runlock").read_text()
        blocked = invoke("run", "-c", str(config), "--at", AT)
        dry = invoke("run", "-c", str(config), "--at", AT, "--dry-run")
    assert blocked.exit_code == 1
    assert blocked.output == (
        f"Error: another campaign run ({holder}) is using the store {database}; wait for it to "
        "finish, then run again\n"
    )
    assert holder.startswith("pid ")
    assert dry.exit_code == 0  # a dry run writes nothing and needs no lock
    after = invoke("run", "-c", str(config), "--at", AT)
    assert after.output.splitlines()[-1] == "Planned 20 new messages: 20 sent."


def test_worker_refuses_an_unknown_channel(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws", CHANNELS, EVERYONE, customers=20)
    result = invoke("worker", "-c", str(config), "--once", "--channel", "email")
    assert result.exit_code == 1
    assert result.output == "Error: no channel called 'email'; channels in the config: mail\n"


def test_a_missing_credential_stops_delivery_with_messages_kept(tmp_path: Path) -> None:
    mail = (
        '[channels.email]\ntype = "smtp"\nhost = "127.0.0.1"\nport = 9\n'
        'from = "news@example.com"\nusername_env = "CAMPAIGN_TEST_NO_USER"\n'
        'password_env = "CAMPAIGN_TEST_NO_PASSWORD"\n'
    )
    config = make_workspace(tmp_path / "ws", CHANNELS + mail, EVERYONE, customers=20)
    # The email channel has nothing to send: its credentials are not needed.
    idle = invoke("run", "-c", str(config), "--at", AT)
    assert idle.output.splitlines()[-1] == "Planned 20 new messages: 20 sent."
    text = config.read_text().replace('channel = "mail"', 'channel = "email"')
    config.write_text(text.replace('cron = "0 8 * * *"', 'cron = "0 9 * * *"'))
    failed = invoke("run", "-c", str(config), "--at", AT)
    assert failed.exit_code == 1
    assert failed.output == (
        "Error: channel 'email': environment variable CAMPAIGN_TEST_NO_USER is not set "
        "(username_env = 'CAMPAIGN_TEST_NO_USER' in config.toml)\n"
    )
    with opened_store(store_url(config)) as engine:
        assert outbox.counts_by_status(engine) == {"sent": 20, "queued": 20}
