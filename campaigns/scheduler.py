"""``campaign serve``: the APScheduler daemon that runs each campaign when its trigger fires.

One job per enabled campaign: a cron trigger (in the campaign's timezone) for ``schedule``, a
date trigger for ``once``, and an interval (``check_every``) for triggers that depend on data
(segment entered/exited, inactivity, events). Jobs live in a SQLAlchemyJobStore in the store's
own database, so a restarted daemon knows what it missed: a job whose fire time passed while the
daemon was down runs once (``coalesce``) if it is late by at most ``MISFIRE_GRACE``.

Every job calls :func:`campaigns.run.run_campaigns` with ``only=`` its campaign, the very function
``campaign run`` calls, so cron and the daemon plan and send identically (a window is planned once,
whichever of them gets there first). The daemon reloads ``config.toml`` when its modification time
changes; a config with errors is reported and the previous jobs keep running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlmodel import Session, select

from campaigns.config import load_config
from campaigns.config.rules import OnceTrigger, ScheduleTrigger
from campaigns.config.schema import Config
from campaigns.counts import fates_sentence
from campaigns.errors import CampaignError
from campaigns.run import run_campaigns
from campaigns.summary import RunResult
from campaigns.triggers import last_fire
from store.engine import open_store
from store.tables import CampaignWindow

#: A job late by more than this (the daemon was down) is skipped, not run.
MISFIRE_GRACE = timedelta(hours=1)
#: The job store's table in the store's database.
JOBS_TABLE = "scheduler_job"
_PREFIX = "campaign:"
_RUN = "campaigns.scheduler:run_scheduled"


def run_scheduled(config_path: str, campaign: str) -> RunResult:
    """A job's body: read the current config and run one campaign, as ``campaign run`` would."""
    config = load_config(Path(config_path))
    return run_campaigns(config, only=campaign)


def job_triggers(config: Config, check_every: timedelta, now: datetime) -> dict[str, Any]:
    """The trigger of each campaign's job, by job id (``campaign:NAME``)."""
    triggers: dict[str, Any] = {}
    for name, campaign in sorted(config.campaigns.items()):
        if not campaign.enabled:
            continue
        trigger = campaign.trigger
        if isinstance(trigger, ScheduleTrigger):
            zone = ZoneInfo(trigger.timezone)
            triggers[_PREFIX + name] = CronTrigger.from_crontab(trigger.cron, timezone=zone)
        elif isinstance(trigger, OnceTrigger):
            zone = ZoneInfo(trigger.timezone)
            at = trigger.at if trigger.at.tzinfo else trigger.at.replace(tzinfo=zone)
            if at >= now.replace(tzinfo=UTC) - MISFIRE_GRACE:
                triggers[_PREFIX + name] = DateTrigger(run_date=at, timezone=zone)
        else:
            triggers[_PREFIX + name] = IntervalTrigger(
                seconds=check_every.total_seconds(), timezone=UTC
            )
    return triggers


def _same(old: Any, new: Any) -> bool:
    """Whether two triggers fire alike (an interval's start time does not count)."""

    def key(trigger: Any) -> tuple[str, str, str]:
        return type(trigger).__name__, str(trigger), str(getattr(trigger, "timezone", ""))

    return key(old) == key(new)


@dataclass(frozen=True)
class JobInfo:
    """A scheduled job as the daemon reports it."""

    campaign: str
    trigger: str
    next_run: datetime | None


class Daemon:
    """The scheduler, its job store and the config it was built from.

    :param config_path: the workspace's ``config.toml``, re-read by each job and on change
    :param check_every: how often campaigns with data-driven triggers are run
    :param on_event: receives one line per job run, failure, miss and reload
    """

    def __init__(
        self,
        config_path: Path,
        check_every: timedelta = timedelta(minutes=15),
        on_event: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.config_path = config_path.resolve()
        self.check_every = check_every
        self.on_event = on_event
        self.config = load_config(self.config_path)
        self._mtime = self.config_path.stat().st_mtime_ns
        self.engine: Engine = open_store(self.config.store.url, self.config.root)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine, tablename=JOBS_TABLE)},
            # One run at a time: runs share the store's run lock anyway.
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
                "max_instances": 1,
            },
            timezone=UTC,
        )
        self.scheduler.add_listener(
            self._report, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        )

    def start(self) -> list[JobInfo]:
        """Start the scheduler with the config's jobs; return them."""
        # Paused first: jobs are synced against the persistent store before any of them runs,
        # so a job that fired while the daemon was down is caught up (once) rather than reset.
        self.scheduler.start(paused=True)
        self.sync(self.config)
        self.scheduler.resume()
        return self.jobs()

    def sync(self, config: Config) -> None:
        """Make the job store hold exactly the jobs of ``config``; unchanged jobs keep times."""
        now = datetime.now(UTC)
        wanted = job_triggers(config, self.check_every, now)
        args = [str(self.config_path)]
        for job in self.scheduler.get_jobs():
            if job.id.startswith(_PREFIX) and job.id not in wanted:
                job.remove()
        existing = {job.id: job for job in self.scheduler.get_jobs()}
        for job_id, trigger in wanted.items():
            campaign = job_id.removeprefix(_PREFIX)
            job = existing.get(job_id)
            if job is not None and _same(job.trigger, trigger) and job.args[0] == args[0]:
                continue
            # A one-shot whose time has just passed and has no job: add it (to run now) only if
            # its window is not planned yet, or it would run again at each reload.
            if (
                job is None
                and isinstance(trigger, DateTrigger)
                and trigger.run_date < now
                and self._planned(config, campaign, now)
            ):
                continue
            self.scheduler.add_job(
                _RUN,
                trigger,
                args=[*args, campaign],
                id=job_id,
                name=campaign,
                replace_existing=True,
            )

    def _planned(self, config: Config, campaign: str, now: datetime) -> bool:
        trigger = config.campaigns[campaign].trigger
        assert isinstance(trigger, OnceTrigger)
        window = last_fire(trigger, now.replace(tzinfo=None))
        if window is None:
            return False
        with Session(self.engine) as session:
            found = session.exec(
                select(CampaignWindow).where(
                    CampaignWindow.campaign == campaign, CampaignWindow.window == window.key
                )
            ).first()
        return found is not None

    def reload_if_changed(self) -> bool:
        """Re-read ``config.toml`` if it changed; return whether the jobs were rebuilt."""
        try:
            mtime = self.config_path.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            config = load_config(self.config_path)
        except CampaignError as exc:
            self.on_event(f"config not reloaded, keeping the previous jobs: {exc}")
            return False
        self.config = config
        self.sync(config)
        self.on_event(f"reloaded {self.config_path.name}: {len(self.jobs())} jobs")
        return True

    def jobs(self) -> list[JobInfo]:
        """The scheduled jobs, by next run time."""
        infos = [
            JobInfo(
                campaign=job.name,
                trigger=str(job.trigger),
                next_run=(
                    job.next_run_time.astimezone(UTC).replace(tzinfo=None)
                    if job.next_run_time
                    else None
                ),
            )
            for job in self.scheduler.get_jobs()
            if job.id.startswith(_PREFIX)
        ]
        return sorted(infos, key=lambda j: (j.next_run or datetime.max, j.campaign))

    def stop(self) -> None:
        """Wait for a running job to finish, then stop and close the store."""
        if self.scheduler.state != STATE_STOPPED:
            # APScheduler 3 looks for due jobs once more after shutdown and, unable to submit
            # them, moves them to their next time: a run due right then would be lost. Taking
            # the job store out first keeps those jobs due in the database for the next start.
            self.scheduler.remove_jobstore("default")
            self.scheduler.shutdown(wait=True)
        self.engine.dispose()

    def _report(self, event: JobEvent) -> None:
        campaign = event.job_id.removeprefix(_PREFIX)
        if event.code == EVENT_JOB_MISSED:
            self.on_event(
                f"{campaign}: missed the run due at {event.scheduled_run_time:%Y-%m-%d %H:%M %Z}"
            )
        elif event.code == EVENT_JOB_ERROR:
            self.on_event(f"{campaign}: run failed: {event.exception}")
        else:
            result: RunResult = event.retval
            totals = result.totals
            self.on_event(
                f"{campaign}: run {result.run_id} planned {totals.planned:,}: "
                + fates_sentence(totals)
            )


def serve(
    config_path: Path,
    stop: threading.Event,
    *,
    poll_seconds: float = 5.0,
    check_every: timedelta = timedelta(minutes=15),
    on_event: Callable[[str], None] = lambda _line: None,
    on_start: Callable[[list[JobInfo]], None] = lambda _jobs: None,
) -> None:
    """Run the daemon until ``stop`` is set, checking ``config.toml`` every ``poll_seconds``."""
    daemon = Daemon(config_path, check_every, on_event)
    try:
        on_start(daemon.start())
        while not stop.wait(poll_seconds):
            daemon.reload_if_changed()
    finally:
        daemon.stop()
