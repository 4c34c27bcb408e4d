"""Rendering on every core (issue 14): a pool renders the same messages, in the same order, with
the same per-customer failures and the same budgets as rendering in the run's own process."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from campaigns import rendering
from campaigns.errors import RenderFailuresError
from campaigns.rendering import Parallel
from campaigns.run import run_campaigns
from campaigns.run_records import held_alive, start_run
from store.engine import open_store
from tests.test_render_isolation import AT, INCOME, stored, workspace

POOL = "render_processes = 2\nrender_chunk_size = 37"


def _messages(tmp_path: Path, settings: str, template: str = INCOME) -> pd.DataFrame:
    config = workspace(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", template, settings)
    result = run_campaigns(config, at=AT, dry_run=True)
    frames = [m.assign(campaign=name) for name, m in sorted(result.messages.items())]
    messages = pd.concat(frames, ignore_index=True)
    # Missing values as None (chunks concatenated may hold NaN; the outbox stores NULL either way).
    return messages.astype(object).where(messages.notna(), None)


def test_a_pool_renders_what_the_run_renders_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = _messages(tmp_path / "alone", "render_processes = 1")
    # The demo workspace has 300 customers: let a pool start from the first message.
    monkeypatch.setattr(rendering, "PARALLEL_FROM", 0)
    assert Parallel(2, 37).workers(300) == 2
    # The same signing key (made on first use in .campaign/), so that links and tokens compare.
    keys = tmp_path / "pooled" / ".campaign"
    keys.mkdir(parents=True)
    shutil.copy(tmp_path / "alone" / ".campaign" / "tracking-keys", keys)
    pooled = _messages(tmp_path / "pooled", POOL)
    assert len(alone) > 250
    # Customers without an income fail the newsletter in the pool as they do alone.
    failed = pooled["status"] == "render_failed"
    assert 1 <= failed.sum() <= 15
    assert set(pooled.loc[failed, "last_error"]) == {
        "newsletter.txt.j2:2: TypeError: money needs a number, got a missing value"
    }
    pd.testing.assert_frame_equal(pooled, alone)


def test_a_template_broken_for_everyone_stops_a_pooled_run_with_nothing_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rendering, "PARALLEL_FROM", 0)
    config = workspace(
        tmp_path, f"sqlite:///{tmp_path / 'c.db'}", "Hi {{ customer.age.lower() }}\n", POOL
    )
    with pytest.raises(RenderFailuresError) as caught:
        run_campaigns(config, at=AT, only="newsletter")
    message = str(caught.value)
    # A worker stops when its own failures pass 5% of the campaign's 300 messages: 16 of them.
    assert message.startswith(
        "campaign newsletter: 16 of 300 messages failed to render (more than [settings.limits] "
        "max_render_failure_share = 5%); nothing of this run was queued. First, customer C"
    )
    assert stored(config).empty


@pytest.mark.parametrize(
    ("parallel", "messages", "workers"),
    [
        (Parallel(), rendering.PARALLEL_FROM - 1, 1),  # small: no pool start-up cost
        (Parallel(processes=1), 1_000_000, 1),
        (Parallel(processes=8, chunk_size=20_000), 50_000, 3),  # no more workers than chunks
        (Parallel(processes=2), 1_000_000, 2),
    ],
)
def test_how_many_processes_render(parallel: Parallel, messages: int, workers: int) -> None:
    assert parallel.workers(messages) == workers


def test_every_core_by_default() -> None:
    assert Parallel().workers(1_000_000) == min(
        len(os.sched_getaffinity(0)), -(-1_000_000 // 20_000)
    )


def test_a_run_writing_its_messages_stays_alive_on_sqlite(tmp_path: Path) -> None:
    """While a run's one transaction holds SQLite's write lock its heartbeat cannot write: the
    run's alive_until is set ahead by its render budget first, so it never looks dead."""
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        run_id, _ = start_run(engine, AT, "cfg")
        before = datetime.now(UTC).replace(tzinfo=None)
        with held_alive(engine, run_id, 3600), engine.connect() as connection:
            until = connection.execute(
                text("SELECT alive_until FROM campaign_run WHERE id = :id"), {"id": run_id}
            ).scalar_one()
        ahead = datetime.fromisoformat(str(until)) - before
        assert timedelta(minutes=59) < ahead <= timedelta(hours=1, seconds=5)
    finally:
        engine.dispose()
