"""The APScheduler daemon in-process: one job per campaign from its trigger and timezone, a
persistent job store in the store's database, coalescing and misfire grace, reload on change."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from campaigns.scheduler import MISFIRE_GRACE, Daemon, JobInfo
from tests.delivery_kit import make_workspace

CHANNELS = '[channels.export]\ntype = "file"\nformat = "csv"\ndirectory = "out"\n'

CAMPAIGNS = """
[campaigns.morning]
segments = ["*"]
trigger = { type = "schedule", cron = "0 9 * * *", timezone = "America/New_York" }
channel = "export"
template = "newsletter"

[campaigns.launch]
segments = ["*"]
trigger = { type = "once", at = 2099-01-01T12:00:00, timezone = "Europe/Paris" }
channel = "export"
template = "newsletter"

[campaigns.off]
enabled = false
segments = ["*"]
trigger = { type = "schedule", cron = "0 9 * * *" }
channel = "export"
template = "newsletter"
"""


def assert_jobs_by_time(jobs: list[JobInfo], campaigns: list[str]) -> None:
    """The jobs are these campaigns', listed by next run time.

    Which of two daily jobs comes first depends on the time of day the test runs ("off" fires at
    09:00 UTC, "morning" at 14:00 UTC), so only the order by time is asserted, not a fixed list.
    """
    assert sorted(j.campaign for j in jobs) == campaigns
    times = [j.next_run or datetime.max for j in jobs]
    assert times == sorted(times)
    assert jobs[-1].campaign == "launch"  # in 2099


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_jobs_follow_the_config_persist_and_reload(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws", CHANNELS, CAMPAIGNS, customers=20)
    events: list[str] = []
    daemon = Daemon(config, on_event=events.append)
    try:
        jobs = daemon.start()
        assert [j.campaign for j in jobs] == ["morning", "launch"]
        morning, launch = jobs
        # 09:00 in New York is 14:00 UTC in winter; the one-shot is at noon in Paris.
        assert morning.next_run is not None
        assert (morning.next_run.hour, morning.next_run.minute) == (14, 0)
        assert morning.trigger == "cron[month='*', day='*', day_of_week='*', hour='9', minute='0']"
        assert launch == JobInfo(
            "launch", "date[2099-01-01 12:00:00 CET]", datetime(2099, 1, 1, 11)
        )
        for job in daemon.scheduler.get_jobs():
            assert job.coalesce is True
            assert job.misfire_grace_time == MISFIRE_GRACE.total_seconds()
            assert job.func_ref == "campaigns.scheduler:run_scheduled"
            assert job.args == (str(config.resolve()), job.name)
    finally:
        daemon.stop()

    # A restarted daemon finds its jobs in the store's database, times unchanged.
    again = Daemon(config, on_event=events.append)
    try:
        assert again.start() == jobs
        assert not again.reload_if_changed()
        config.write_text(config.read_text().replace("enabled = false", "enabled = true"))
        touch_later(config)
        assert again.reload_if_changed()
        assert_jobs_by_time(again.jobs(), ["launch", "morning", "off"])
        config.write_text(
            config.read_text().replace('cron = "0 9 * * *" }', 'cron = "61 9 * * *" }')
        )
        touch_later(config)
        assert not again.reload_if_changed()
        assert_jobs_by_time(again.jobs(), ["launch", "morning", "off"])
    finally:
        again.stop()
    assert events[0] == "reloaded config.toml: 3 jobs"
    line = config.read_text().splitlines().index("[campaigns.off]") + 4  # its trigger line
    assert events[1] == (
        f"config not reloaded, keeping the previous jobs: {config}:{line}: campaigns.off.trigger: "
        "invalid cron expression '61 9 * * *': Error validating expression '61': the last value "
        "(61) is higher than the maximum value (59)"
    )


def test_a_job_missed_while_the_daemon_was_down_runs_once_on_start(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws", CHANNELS, CAMPAIGNS, customers=20)
    daemon = Daemon(config)
    # Pretend the daemon went down before the morning run was due, and came back after it
    # (paused, so this daemon does not run the job itself).
    daemon.scheduler.start(paused=True)
    daemon.sync(daemon.config)
    job = daemon.scheduler.get_job("campaign:morning")
    past = datetime.now(job.next_run_time.tzinfo) - timedelta(minutes=10)
    daemon.scheduler.modify_job("campaign:morning", next_run_time=past)
    daemon.stop()
    events: list[str] = []
    again = Daemon(config, on_event=events.append)
    try:
        again.start()
        deadline = datetime.now() + timedelta(seconds=30)
        while not events and datetime.now() < deadline:
            time.sleep(0.05)
    finally:
        again.stop()
    assert events == ["morning: run 1 planned 20: 20 sent"]


def test_a_one_shot_just_past_runs_once_and_not_again_on_reload(tmp_path: Path) -> None:
    at = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=1)
    late = f"""
[campaigns.late]
segments = ["*"]
trigger = {{ type = "once", at = {at:%Y-%m-%dT%H:%M:%S}, timezone = "UTC" }}
channel = "export"
template = "newsletter"
"""
    config = make_workspace(tmp_path / "ws", CHANNELS, late, customers=20)
    events: list[str] = []
    daemon = Daemon(config, on_event=events.append)
    try:
        daemon.start()
        deadline = time.monotonic() + 30
        while not events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events == ["late: run 1 planned 20: 20 sent"]
        touch_later(config)
        assert daemon.reload_if_changed()
        assert daemon.jobs() == []
        time.sleep(0.3)
    finally:
        daemon.stop()
    assert events == ["late: run 1 planned 20: 20 sent", "reloaded config.toml: 0 jobs"]
