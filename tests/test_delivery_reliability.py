"""Delivery that loses nothing and doubles nothing: the send-time suppression check, two-phase
file exports finished or rolled back after a crash at each step, runs that died, dead workers'
claims, and ``campaign retry`` (issue #10)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from sqlalchemy import Engine, text

from campaigns.delivery.drain import drain, worker_id
from campaigns.delivery.export import FileChannel
from cli.main import cli
from store import exports, outbox
from store.bulk import read_frame
from tests.delivery_kit import AT, config_with, outbox_rows
from tests.http_server import Hook, http_server
from tests.smtp_server import MailServer, smtp_server

LEASE = timedelta(minutes=5)


def suppress(engine: Engine, customers: list[str], reason: str = "unsubscribed") -> None:
    with engine.begin() as connection:
        for customer in customers:
            connection.execute(
                text(
                    "INSERT INTO suppression (customer_id, reason, created_at) VALUES (:c, :r, :t)"
                ),
                {"c": customer, "r": reason, "t": "2026-11-23 11:00:00.000000"},
            )


def statuses(engine: Engine) -> dict[str, str]:
    frame = read_frame(engine, "SELECT customer_id, status FROM message ORDER BY id")
    return dict(zip(frame["customer_id"], frame["status"], strict=True))


# -- the send-time check ----------------------------------------------------------------------


def test_a_customer_suppressed_after_queueing_is_never_sent(
    tmp_path: Path, fresh_store: Engine, store_url: str
) -> None:
    # The case: ten messages queued, then every customer unsubscribed: 10 of 10 were
    # delivered. Now the drain withholds them and says so.
    server = MailServer()
    outbox.enqueue(fresh_store, outbox_rows([f"u{i}@example.com" for i in range(10)], "mail"))
    suppress(fresh_store, [f"c{i}" for i in range(10)])
    with smtp_server(server) as port:
        config = config_with(
            tmp_path,
            store_url,
            {"mail": {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
                      "from": "news@shop.example"}},
        )  # fmt: skip
        result = drain(fresh_store, config)
    assert server.messages == []
    assert dict(result.suppressed) == {"winback": 10}
    assert sum(result.sent.values()) == 0
    errors = read_frame(fresh_store, "SELECT DISTINCT status, last_error FROM message")
    assert errors.values.tolist() == [["suppressed", "suppressed: unsubscribed"]]


def test_the_do_not_contact_file_is_read_at_send_time_too(
    tmp_path: Path, fresh_store: Engine, store_url: str
) -> None:
    (tmp_path / "dnc.txt").write_text("c1\n")
    outbox.enqueue(fresh_store, outbox_rows(["a@x", "b@x", "c@x"], "export"))
    config = config_with(tmp_path, store_url, {"export": {"type": "file", "directory": "out"}})
    config = config.model_copy(
        update={"settings": config.settings.model_copy(update={"do_not_contact": Path("dnc.txt")})}
    )
    result = drain(fresh_store, config, AT, label="x")
    assert statuses(fresh_store) == {"c0": "sent", "c1": "suppressed", "c2": "sent"}
    assert dict(result.suppressed) == {"winback": 1}
    exported = pd.read_csv(tmp_path / "out" / "winback" / "x.csv")
    assert exported["customer_id"].tolist() == ["c0", "c2"]


# -- crash-exact file exports -------------------------------------------------------------------


def file_config(tmp_path: Path, store_url: str) -> object:
    return config_with(tmp_path, store_url, {"export": {"type": "file", "directory": "out"}})


def staged_and_recorded(
    engine: Engine, tmp_path: Path, now: datetime
) -> tuple[FileChannel, list[exports.PreparedFile], list[object]]:
    """Steps 1 and 2 of an export, as a worker that then dies would have left them."""
    channel = FileChannel("export", tmp_path / "out", "csv")
    batch = outbox.claim(engine, "export", "elsewhere:1", now, lease=LEASE)
    token = str(batch["claimed_by"].iloc[0])
    staged = channel.stage(batch, "died")
    prepared = [
        exports.PreparedFile(f"{token}/1", s.campaign, str(s.path), str(s.temp_path), len(s.ids))
        for s in staged
    ]
    exports.record(engine, token, prepared, now, LEASE, "export")
    return channel, prepared, list(staged)


def exported_keys(tmp_path: Path) -> list[str]:
    files = sorted((tmp_path / "out").rglob("*.csv"))
    return sorted(k for f in files for k in pd.read_csv(f)["idempotency_key"])


def test_a_crash_after_the_rename_is_finished_never_exported_again(
    tmp_path: Path, fresh_store: Engine, store_url: str
) -> None:
    rows = outbox_rows([f"u{i}@x" for i in range(5)], "export")
    outbox.enqueue(fresh_store, rows)
    channel, _, staged = staged_and_recorded(fresh_store, tmp_path, AT)
    channel.publish(staged[0])  # renamed into place; then the worker dies before marking sent
    assert outbox.counts_by_status(fresh_store) == {"exporting": 5}
    # Nothing is claimable while the export is prepared; a drain before the lease ends waits.
    early = drain(fresh_store, file_config(tmp_path, store_url), AT, clock=lambda: AT)
    assert early.exports_finished == 0
    assert outbox.counts_by_status(fresh_store) == {"exporting": 5}
    later = AT + LEASE + timedelta(seconds=1)
    result = drain(fresh_store, file_config(tmp_path, store_url), later, clock=lambda: later)
    assert result.exports_finished == 5
    assert outbox.counts_by_status(fresh_store) == {"sent": 5}
    assert exported_keys(tmp_path) == sorted(rows["idempotency_key"])  # once each
    batch = read_frame(fresh_store, "SELECT status, messages FROM export_batch")
    assert batch.values.tolist() == [["done", 5]]


def test_a_crash_before_the_rename_is_published_by_the_next_drain(
    tmp_path: Path, fresh_store: Engine, store_url: str
) -> None:
    rows = outbox_rows([f"u{i}@x" for i in range(4)], "export")
    outbox.enqueue(fresh_store, rows)
    _, prepared, _ = staged_and_recorded(fresh_store, tmp_path, AT)
    assert not Path(prepared[0].path).exists()
    later = AT + LEASE + timedelta(seconds=1)
    result = drain(fresh_store, file_config(tmp_path, store_url), later, clock=lambda: later)
    assert result.exports_finished == 4
    assert Path(prepared[0].path).exists()
    assert Path(prepared[0].path).with_name("died.manifest.json").exists()
    assert exported_keys(tmp_path) == sorted(rows["idempotency_key"])


def test_a_prepared_export_whose_file_is_gone_is_rolled_back_and_exported_once(
    tmp_path: Path, fresh_store: Engine, store_url: str
) -> None:
    rows = outbox_rows([f"u{i}@x" for i in range(3)], "export")
    outbox.enqueue(fresh_store, rows)
    _, prepared, _ = staged_and_recorded(fresh_store, tmp_path, AT)
    Path(prepared[0].temp_path).unlink()  # say, a cleaned temporary folder
    later = AT + LEASE + timedelta(seconds=1)
    result = drain(fresh_store, file_config(tmp_path, store_url), later, label="again",
                   clock=lambda: later)  # fmt: skip
    assert result.exports_rolled_back == 3
    assert outbox.counts_by_status(fresh_store) == {"sent": 3}
    assert exported_keys(tmp_path) == sorted(rows["idempotency_key"])


def test_a_dead_local_workers_claim_is_released_at_once(
    tmp_path: Path, fresh_store: Engine, store_url: str
) -> None:
    outbox.enqueue(fresh_store, outbox_rows(["a@x", "b@x"], "export"))
    # A worker of this host that has exited (its pid no longer exists) claimed the batch.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = worker_id().rsplit(":", 1)[0]
    outbox.claim(fresh_store, "export", f"{host}:{gone.stdout.strip()}", AT, lease=LEASE)
    # A claim of a live process (this one) is left alone.
    result = drain(fresh_store, file_config(tmp_path, store_url), AT, clock=lambda: AT)
    assert sum(result.sent.values()) == 2  # not five minutes later: now
    assert outbox.counts_by_status(fresh_store) == {"sent": 2}
    assert os.getpid() > 0


# -- SMTP and webhooks record each send at once -------------------------------------------------


def test_each_webhook_send_is_recorded_before_the_next_is_attempted(
    tmp_path: Path, fresh_store: Engine, store_url: str
) -> None:
    seen: list[dict[str, str]] = []

    def record_states(request_number: int) -> None:
        seen.append(statuses(fresh_store))

    hook = Hook(on_request=record_states)
    outbox.enqueue(fresh_store, outbox_rows(["a@x", "b@x", "c@x"], "crm"))
    with http_server(hook) as url:
        config = config_with(tmp_path, store_url, {"crm": {"type": "webhook", "url": url}})
        drain(fresh_store, config)
    # When the receiver got message n, messages 1..n-1 were already recorded as sent.
    assert seen == [
        {"c0": "sending", "c1": "sending", "c2": "sending"},
        {"c0": "sent", "c1": "sending", "c2": "sending"},
        {"c0": "sent", "c1": "sent", "c2": "sending"},
    ]


# -- campaign retry -------------------------------------------------------------------------------


def test_campaign_retry_requeues_failed_messages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / '.campaign' / 'campaign.db'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n[source]\ntype = "demo"\n'
        '[channels.export]\ntype = "file"\ndirectory = "out"\n'
        '[campaigns.winback]\nsegments = ["*"]\ntrigger = { type = "inactive", days = 90 }\n'
        'channel = "export"\ntemplate = "winback"\nsubject = "Hi"\n'
    )
    from store.engine import opened_store

    with opened_store(url) as engine:
        outbox.enqueue(engine, outbox_rows(["a@x", "b@x", "c@x"], "export"))
        batch = outbox.claim(engine, "export", "w", AT)
        ids = batch["id"].astype(int).tolist()
        outbox.mark_failed(engine, ids[:2], ["HTTP 401 Unauthorized"] * 2)
        outbox.mark_sent(engine, ids[2:], ["x"], AT)
    runner = CliRunner()
    done = runner.invoke(cli, ["retry", "-c", str(config), "--campaign", "winback"])
    assert done.exit_code == 0, done.output
    assert done.output == (
        "Requeued 2 failed messages of campaign winback; the next run or worker delivers them.\n"
    )
    with opened_store(url) as engine:
        assert outbox.counts_by_status(engine) == {"queued": 2, "sent": 1}
        again = read_frame(
            engine, "SELECT attempts, last_error FROM message WHERE status = 'queued'"
        )
        assert again.values.tolist() == [[0, None], [0, None]]
    unknown = runner.invoke(cli, ["retry", "-c", str(config), "--campaign", "nope"])
    assert unknown.exit_code == 1
    assert unknown.output == (
        "Error: no campaign called 'nope'; campaigns in the config: winback\n"
    )


# -- runs that died -----------------------------------------------------------------------------


def test_a_killed_run_is_shown_dead_and_the_next_run_says_so(tmp_path: Path) -> None:
    from benchmarks.faults import run_and_kill
    from campaigns.config import load_config
    from campaigns.run import run_campaigns
    from campaigns.status import workspace_status
    from tests.delivery_kit import EVERYONE, make_workspace

    channels = '[channels.mail]\ntype = "file"\ndirectory = "out"\n'
    path = make_workspace(tmp_path / "ws", channels, EVERYONE, customers=60)
    killed = run_and_kill("run", path, AT, frozenset({"Rendering"}), 0.0)
    assert killed == "Rendering"
    config = load_config(path)
    before = workspace_status(config, AT)
    assert [(r.run_id, r.status) for r in before.runs] == [(1, "died")]
    result = run_campaigns(config, at=AT)
    assert result.run_id == 2
    assert "run 1 died without finishing (marked died)" in result.notes
    after = workspace_status(config, AT)
    assert [(r.run_id, r.status) for r in after.runs] == [(2, "succeeded"), (1, "died")]
    assert after.runs[1].error == (
        "the process stopped without finishing (killed, or the machine stopped)"
    )


def test_a_load_is_refused_while_a_run_holds_the_store(tmp_path: Path) -> None:
    import pytest

    from campaigns.config import load_config
    from campaigns.data import reload_source
    from campaigns.errors import RunLockedError
    from store.engine import opened_store
    from store.locks import run_lock
    from tests.delivery_kit import EVERYONE, make_workspace

    channels = '[channels.mail]\ntype = "file"\ndirectory = "out"\n'
    config = load_config(make_workspace(tmp_path / "ws", channels, EVERYONE, customers=30))
    with (
        opened_store(config.store.url, config.root) as engine,
        run_lock(engine),
        pytest.raises(RunLockedError) as caught,
    ):
        reload_source(config, AT)
    assert "is using the store" in str(caught.value)
    shop = reload_source(config, AT)  # once the run is over, the load goes ahead
    assert len(shop.customers) == 30
