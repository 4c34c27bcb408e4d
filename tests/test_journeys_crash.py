"""Journeys across real processes: a run killed with SIGKILL while it advances entries, then run
again; two runs at once. Every due step is taken once and its message queued once, on SQLite and
PostgreSQL: the messages in the outbox are exactly the moves recorded as sent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from store.bulk import read_frame
from store.engine import open_store
from tests.test_journeys_run import REPO, workspace

pytestmark = pytest.mark.slow

AT = datetime(2026, 11, 23, 12, 0)

JOURNEY = """
[journeys.flow]
trigger = { type = "once", at = 2026-11-23T12:00:00 }
channel = "export"

[[journeys.flow.steps]]
name = "note"
send = "lapsing_note"

[[journeys.flow.steps]]
name = "pause"
wait = "1h"

[[journeys.flow.steps]]
name = "story"
send = "lapsing_story"
"""

CUSTOMERS = 600


def run(
    config: Path, at: datetime, chunk: int = 40, locked: bool = True
) -> subprocess.Popen[bytes]:
    """``run_campaigns`` in a real process, advancing ``chunk`` entries per transaction; its
    output goes to ``run-N.log`` beside the config."""
    code = (
        f"import campaigns.journeys.runner as r; r.CHUNK = {chunk}\n"
        "from campaigns.config import load_config\n"
        "from campaigns.run import run_campaigns\n"
        "from datetime import datetime\n"
        "from campaigns.run import _run\n"
        "from campaigns.progress import quiet\n"
        "from store.engine import opened_store\n"
        f"config, at = load_config({str(config)!r}), datetime.fromisoformat({at.isoformat()!r})\n"
    )
    if locked:
        code += "run_campaigns(config, at=at)\n"
    else:  # without the run lock, to race on the store's own guarantees
        code += (
            "with opened_store(config.store.url, config.root) as engine:\n"
            "    _run(engine, config, at, False, None, quiet)\n"
        )
    log = config.parent / f"run-{len(list(config.parent.glob('run-*.log')))}.log"
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def finished(process: subprocess.Popen[bytes], config: Path) -> None:
    """Wait for a run; fail with every run's output if it failed."""
    if process.wait(timeout=120) != 0:
        logs = sorted(config.parent.glob("run-*.log"))
        pytest.fail("\n".join(f"{p.name}:\n{p.read_text()}" for p in logs))


def count(url: str, root: Path, sql: str) -> int:
    engine = open_store(url, root)
    try:
        return int(read_frame(engine, sql).iloc[0, 0])
    except Exception:  # the tables may not exist yet
        return 0
    finally:
        engine.dispose()


def check_exactly_once(url: str, root: Path) -> tuple[int, dict[str, int]]:
    """The outbox holds one message per move recorded as sent, and nothing else."""
    engine = open_store(url, root)
    try:
        sent = read_frame(
            engine,
            "SELECT e.customer_id, e.entry_no, m.step FROM journey_move m JOIN journey_entry e "
            "ON e.id = m.entry_id WHERE m.outcome = 'sent'",
        )
        queued = read_frame(
            engine, "SELECT customer_id, \"window\" FROM message WHERE campaign = 'flow'"
        )
        entries = read_frame(engine, "SELECT step, status FROM journey_entry")
    finally:
        engine.dispose()
    moves = {
        (str(c), f"entry{n}:{s}")
        for c, n, s in zip(sent["customer_id"], sent["entry_no"], sent["step"], strict=True)
    }
    messages = list(zip(queued["customer_id"].astype(str), queued["window"], strict=True))
    assert len(messages) == len(set(messages)), "a message queued twice"
    assert set(messages) == moves, "messages and recorded moves disagree"
    assert len(sent) == len(moves), "a move recorded twice"
    at = entries.groupby(entries["step"].fillna(entries["status"])).size()
    return len(entries), {str(k): int(v) for k, v in at.items()}


def test_a_run_killed_while_advancing_journeys_then_rerun_takes_every_step_once(
    tmp_path: Path, store_url: str
) -> None:
    config = workspace(tmp_path, store_url, JOURNEY, customers=CUSTOMERS)
    first = run(config, AT, chunk=10)
    deadline = time.monotonic() + 90
    while count(store_url, tmp_path, "SELECT COUNT(*) FROM journey_move") == 0:
        assert first.poll() is None, (tmp_path / "run-0.log").read_text()
        assert time.monotonic() < deadline, "no journey move in 90 s"
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.2))
    first.send_signal(signal.SIGKILL)
    first.wait()
    moved = count(store_url, tmp_path, "SELECT COUNT(*) FROM journey_move")
    entries, _ = check_exactly_once(store_url, tmp_path)
    assert 0 < moved < entries, f"killed after all {moved} moves: not mid-advance"

    again = run(config, AT)
    finished(again, config)
    entries, where = check_exactly_once(store_url, tmp_path)
    assert where == {"pause": entries}

    later = run(config, AT + timedelta(hours=2))
    finished(later, config)
    entries, where = check_exactly_once(store_url, tmp_path)
    assert where == {"completed": entries}
    assert count(store_url, tmp_path, "SELECT COUNT(*) FROM message") == 2 * entries


def test_two_runs_at_once_take_every_step_once(tmp_path: Path, store_url: str) -> None:
    config = workspace(tmp_path, store_url, JOURNEY, customers=400)
    # The data is loaded first, so the two runs race on the journey, not on the first load.
    warm = run(config, AT - timedelta(days=1))
    finished(warm, config)
    # Two runs at once, past the run lock that would otherwise make the second one wait its
    # turn: the database's keys and guarded moves alone keep every step once.
    runs = [run(config, AT, chunk=25, locked=False) for _ in range(2)]
    for process in runs:
        finished(process, config)
    entries, where = check_exactly_once(store_url, tmp_path)
    assert entries > 300
    assert where == {"pause": entries}
    assert count(store_url, tmp_path, "SELECT COUNT(*) FROM message") == entries
