"""Real processes: a run killed by SIGKILL mid-delivery and restarted, parallel workers on
PostgreSQL, two runs at once, and the ``campaign serve`` daemon (SIGTERM, reload).

Each starts ``campaign`` subprocesses, so they take a few seconds: marked ``slow`` (still part of
the default suite; ``-m "not slow"`` skips them).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger

from campaigns.delivery import message_id
from store import outbox
from store.bulk import read_frame
from store.engine import connect, opened_store
from store.migrate import drop_everything
from tests.delivery_kit import EVERYONE, REPO, make_workspace, outbox_rows, smtp_channel
from tests.smtp_server import MailServer, smtp_server

pytestmark = pytest.mark.slow

AT = "2026-11-23T12:00"


def campaign(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """Start ``campaign ARGS`` as a real process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_run_killed_mid_delivery_and_restarted_sends_every_message_exactly_once(
    tmp_path: Path,
) -> None:
    server = MailServer()
    with smtp_server(server) as port:
        config = make_workspace(
            tmp_path / "ws",
            smtp_channel(port, rate_limit=40, batch_size=10, lease_seconds=1, backoff_seconds=0),
            EVERYONE,
        )
        first = campaign("run", "-c", str(config), "--at", AT)
        wait_for(lambda: len(server.messages) >= 30 or first.poll() is not None)
        first.send_signal(signal.SIGKILL)
        output, _ = first.communicate()
        assert first.returncode == -signal.SIGKILL, output
        url = f"sqlite:///{tmp_path / 'ws' / '.campaign' / 'campaign.db'}"
        with opened_store(url) as engine:
            killed = outbox.counts_by_status(engine)
        assert sum(killed.values()) == 120
        # Marks trail the server by at most the batch in hand (10 messages).
        assert 20 <= killed["sent"] < 120
        time.sleep(1.1)  # the dead run's lease expires
        second = campaign("run", "-c", str(config), "--at", AT)
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 0, output
        assert output.splitlines()[-1] == "Nothing new to send."
    with opened_store(url) as engine:
        assert outbox.counts_by_status(engine) == {"sent": 120}
        keys = read_frame(engine, "SELECT idempotency_key FROM message")["idempotency_key"]
        windows = read_frame(engine, "SELECT COUNT(*) AS n FROM campaign_window")["n"]
    assert keys.is_unique  # no message was created twice
    assert int(windows.iloc[0]) == 1
    expected = {message_id(k, "beanandleaf.example") for k in keys}
    received = Counter(server.message_ids())
    assert set(received) == expected  # every message arrived...
    # ...and a repeat is at most the batch the kill interrupted, recognisable by its Message-ID.
    assert sum(received.values()) - len(expected) <= 10


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    engine = connect(postgres_url)
    drop_everything(engine)
    engine.dispose()
    yield postgres_url
    engine = connect(postgres_url)
    drop_everything(engine)
    engine.dispose()


@pytest.mark.postgres
def test_parallel_workers_on_postgresql_send_each_message_once(tmp_path: Path, pg_url: str) -> None:
    server = MailServer()
    with smtp_server(server) as port:
        config = make_workspace(
            tmp_path / "ws", smtp_channel(port, rate_limit=40, batch_size=10), EVERYONE,
            store_url=pg_url,
        )  # fmt: skip
        with opened_store(pg_url) as engine:
            rows = outbox_rows([f"user{i}@example.com" for i in range(120)], "mail")
            outbox.enqueue(engine, rows)
        workers = [campaign("worker", "-c", str(config), "--once") for _ in range(3)]
        outputs = [w.communicate(timeout=60)[0] for w in workers]
        assert [w.returncode for w in workers] == [0, 0, 0], outputs
    with opened_store(pg_url) as engine:
        assert outbox.counts_by_status(engine) == {"sent": 120}
        senders = read_frame(engine, "SELECT DISTINCT claimed_by FROM message")["claimed_by"]
    assert sorted(server.message_ids()) == sorted(
        message_id(k, "beanandleaf.example") for k in rows["idempotency_key"]
    )  # exactly once: no crash, so no repeats
    processes = {str(s).split("#")[0] for s in senders}
    assert len(processes) >= 2, processes
    assert all(o.strip().endswith("failed 0.") for o in outputs)


@pytest.mark.postgres
def test_two_runs_at_once_on_postgresql_send_each_message_once(tmp_path: Path, pg_url: str) -> None:
    server = MailServer()
    with smtp_server(server) as port:
        config = make_workspace(
            tmp_path / "ws", smtp_channel(port, batch_size=20), EVERYONE, store_url=pg_url
        )
        with opened_store(pg_url):
            pass  # the store exists, as it would in production, before the two runs race
        runs = [campaign("run", "-c", str(config), "--at", AT) for _ in range(2)]
        outputs = [r.communicate(timeout=90)[0] for r in runs]
        assert [r.returncode for r in runs] == [0, 0], outputs
    lasts = sorted(o.splitlines()[-1] for o in outputs)
    assert lasts == ["Nothing new to send.", "Planned 120 new messages: 120 sent."]
    assert len(server.message_ids()) == len(set(server.message_ids())) == 120


@pytest.mark.postgres
def test_a_run_with_two_workers_delivers_each_message_once_from_two_processes(
    tmp_path: Path, pg_url: str
) -> None:
    server = MailServer()
    with smtp_server(server) as port:
        config = make_workspace(
            tmp_path / "ws", smtp_channel(port, rate_limit=10, batch_size=10), EVERYONE,
            store_url=pg_url,
        )  # fmt: skip
        run = campaign("run", "-c", str(config), "--at", AT, "--workers", "2")
        output, _ = run.communicate(timeout=90)
        assert run.returncode == 0, output
    assert output.splitlines()[-1] == "Planned 120 new messages: 120 sent.", output
    with opened_store(pg_url) as engine:
        assert outbox.counts_by_status(engine) == {"sent": 120}
        senders = read_frame(engine, "SELECT DISTINCT claimed_by FROM message")["claimed_by"]
        keys = read_frame(engine, "SELECT idempotency_key FROM message")["idempotency_key"]
    assert sorted(server.message_ids()) == sorted(
        message_id(k, "beanandleaf.example") for k in keys
    )  # exactly once
    # The run's own process and the one it started both delivered: rate limits are per process,
    # and alone at 10 a second the run would need 12 s, while the other starts in a few.
    assert len({str(s).split("#")[0] for s in senders}) == 2, set(senders)


class Lines:
    """A process's output lines, read in a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self.thread = threading.Thread(target=lambda: [self.lines.put(x) for x in stream])
        self.thread.start()

    def wait_for(self, fragment: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(line.rstrip("\n"))
            if fragment in line:
                return line.rstrip("\n")


def once(name: str, at: datetime) -> str:
    return f"""
[campaigns.{name}]
segments = ["*"]
trigger = {{ type = "once", at = {at:%Y-%m-%dT%H:%M:%S}, timezone = "UTC" }}
channel = "export"
template = "newsletter"
subject = "Flash sale"
"""


def test_serve_runs_jobs_reloads_config_and_stops_on_sigterm(tmp_path: Path) -> None:
    channels = '[channels.export]\ntype = "file"\nformat = "csv"\ndirectory = "out"\n'
    weekly = EVERYONE.replace('"mail"', '"export"').replace("0 8 * * *", "0 8 * * MON")
    config = make_workspace(tmp_path / "ws", channels, weekly, customers=60)
    daemon = campaign("serve", "-c", str(config), "--poll", "0.2")
    lines = Lines(daemon)
    try:
        assert lines.wait_for("Serving").endswith("with 1 jobs (SIGTERM or Ctrl-C stops).")
        monday = CronTrigger.from_crontab("0 8 * * MON", timezone=UTC)
        next_run = monday.get_next_fire_time(None, datetime.now(UTC))
        assert lines.wait_for("newsletter: next run") == (
            f"  newsletter: next run {next_run:%Y-%m-%d %H:%M} UTC"
        )
        soon = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(seconds=2)
        config.write_text(config.read_text() + once("flash", soon))
        assert lines.wait_for("reloaded").endswith("reloaded config.toml: 2 jobs")
        assert lines.wait_for("flash: run").endswith("flash: run 1 planned 60: 60 sent")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        lines.thread.join()
        assert daemon.stdout is not None
        daemon.stdout.close()
    rest = list(lines.lines.queue)
    assert rest[-1] == "Stopped.\n", lines.seen + rest
    url = f"sqlite:///{tmp_path / 'ws' / '.campaign' / 'campaign.db'}"
    with opened_store(url) as engine:
        tables = read_frame(engine, "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert "scheduler_job" in set(tables["name"])


def test_a_worker_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    channels = '[channels.mail]\ntype = "file"\nformat = "csv"\ndirectory = "out"\n'
    config = make_workspace(tmp_path / "ws", channels, EVERYONE, customers=20)
    worker = campaign("worker", "-c", str(config), "--poll", "0.2")
    lines = Lines(worker)
    try:
        assert lines.wait_for("Worker ").endswith(" delivering (SIGTERM or Ctrl-C stops).")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        lines.thread.join()
        assert worker.stdout is not None
        worker.stdout.close()
    assert list(lines.lines.queue) == ["Worker stopped: sent 0, failed 0.\n"]
