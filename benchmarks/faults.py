"""Fault injection: kill -9 at random points of every stage of ``campaign load``, of ``campaign
run`` and of each channel's delivery, then let a normal run finish, and count what the real sinks
received: the exported files' rows, an aiosmtpd server's messages, an HTTP server's requests.

    python -m benchmarks.faults                       # 20 kills per stage, SQLite and PostgreSQL
    python -m benchmarks.faults --kills 5 --stores sqlite

Each stage is a chain of runs in a fresh store. Before a kill, the harness waits for the stage to
start (the driver, :mod:`benchmarks.fault_driver`, prints each stage as it begins), then a delay
drawn uniformly (fixed seed) from the stage's length in an unkilled reference run. Stages:

- ``load``: ``campaign load`` killed; after each kill the store holds all of the source or none
  of it (checked), then a run sends everything once;
- ``plan``, ``render``, ``outbox``: the first run at one time, killed again and again in that
  stage, then finished;
- ``file``, ``smtp``, ``webhook``: a run a day, each killed while it delivers; before the last
  rounds some customers with queued messages unsubscribe (they must receive nothing more).

Expected: every message of the unkilled reference run (and of each day, for the delivery chains)
arrives exactly once; nothing arrives for a customer after their suppression. Counted: kills,
messages expected, lost (never arrived), duplicates (arrived more than once). SMTP and webhooks
can, at a kill, leave one message per connection whose receiver had answered but whose answer was
not yet recorded; it is re-sent with the same Message-ID / Idempotency-Key, which receivers use to
drop repeats. The table counts such repeats as duplicates, raw, as the sink saw them.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import text

from store.engine import connect, opened_store
from store.migrate import drop_everything
from tests.http_server import Hook, http_server
from tests.pg_server import postgres_server
from tests.smtp_server import MailServer, smtp_server

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)

#: For each stage: the driver command, the channels in play, and the progress names it covers.
STAGES: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    "load": ("load", ("export",), frozenset({"Reading source", "Saving to store"})),
    "plan": (
        "run",
        ("export", "hook", "mail"),
        frozenset({"Building features", "Segmenting", "Planning"}),
    ),
    "render": ("run", ("export", "hook", "mail"), frozenset({"Rendering"})),
    "outbox": ("run", ("export", "hook", "mail"), frozenset({"Writing outbox"})),
    "file": ("run", ("export",), frozenset({"Delivering"})),
    "smtp": ("run", ("mail",), frozenset({"Delivering"})),
    "webhook": ("run", ("hook",), frozenset({"Delivering"})),
}
DELIVERY = ("file", "smtp", "webhook")


@dataclass
class Outcome:
    """One chain's figures."""

    store: str
    stage: str
    kills: int = 0
    #: Of those, kills that fell while messages were being delivered (the driver said so).
    delivery_kills: int = 0
    expected: int = 0
    lost: int = 0
    #: Messages delivered twice: an exported row twice, or any repeat beyond the one message in
    #: flight per kill (must be 0).
    duplicates: int = 0
    #: SMTP and webhook: the message in flight when a kill came, re-sent with the same Message-ID
    #: or Idempotency-Key (at most one per kill; an idempotent receiver drops it).
    in_flight_repeats: int = 0
    #: Messages to customers after they were suppressed (must be 0).
    after_suppression: int = 0
    #: Store states after a killed load that were neither the old nor the new data (must be 0).
    mixed_loads: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Sinks:
    """The real receivers, alive for the whole chain (they outlive every killed run)."""

    mail: MailServer
    hook: Hook
    smtp_port: int
    hook_url: str
    folder: Path

    def received(self) -> Counter[str]:
        """Idempotency keys as the receivers saw them, with repeats."""
        keys: Counter[str] = Counter()
        for message in self.mail.messages:
            keys[str(message["X-Campaign-Idempotency-Key"])] += 1
        for _, body in self.hook.requests:
            keys[str(json.loads(body)["idempotency_key"])] += 1
        for path in sorted((self.folder / "out").rglob("*.csv")):
            keys.update(pd.read_csv(path, dtype=str)["idempotency_key"].tolist())
        return keys


@contextmanager
def sinks(folder: Path) -> Iterator[Sinks]:
    mail, hook = MailServer(), Hook()
    with smtp_server(mail) as port, http_server(hook) as url:
        yield Sinks(mail, hook, port, url, folder)


def workspace(folder: Path, store_url: str, channels: tuple[str, ...], live: Sinks, n: int) -> Path:
    """A workspace with one daily campaign to everyone per channel in play."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [
        f'templates = "{REPO / "templates"}"',
        f'[store]\nurl = "{store_url}"',
        f'[source]\ntype = "demo"\ncustomers = {n}\nseed = 7\nend = 2026-11-20T00:00:00',
        '[segmentation]\nmodel = "kmeans"\nk = 3\nfeatures = ["recency", "frequency", '
        '"monetary"]\nseed = 0',
        "[settings]\nmax_messages_per_customer_per_run = 3\n"
        'unsubscribe_base_url = "https://shop.example/unsubscribe"',
        '[channels.export]\ntype = "file"\ndirectory = "out"\nbatch_size = 150\n'
        "lease_seconds = 30\nbackoff_seconds = 0",
        f'[channels.hook]\ntype = "webhook"\nurl = "{live.hook_url}"\nbatch_size = 50\n'
        "lease_seconds = 30\nbackoff_seconds = 0",
        f'[channels.mail]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {live.smtp_port}\n'
        'security = "none"\nfrom = "Shop <news@shop.example>"\nbatch_size = 50\n'
        "lease_seconds = 30\nbackoff_seconds = 0",
    ]
    for channel in channels:
        parts.append(
            f'[campaigns.daily-{channel}]\nsegments = ["*"]\n'
            'trigger = { type = "schedule", cron = "0 8 * * *", timezone = "UTC" }\n'
            f'channel = "{channel}"\ntemplate = "newsletter"\nsubject = "This week"'
        )
    path = folder / "config.toml"
    path.write_text("\n\n".join(parts) + "\n")
    return path


def driver(what: str, config: Path, at: datetime) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fault_driver", what, str(config), at.isoformat()],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def timed_stages(what: str, config: Path, at: datetime) -> dict[str, float]:
    """Run the driver to the end; return each stage's seconds."""
    process = driver(what, config, at)
    assert process.stdout is not None
    times: dict[str, float] = {}
    current, since = None, time.monotonic()
    for line in process.stdout:
        if line.startswith("STAGE "):
            now = time.monotonic()
            if current is not None:
                times[current] = times.get(current, 0.0) + now - since
            current, since = line.split(" ", 1)[1].strip(), now
    process.stdout.close()
    if process.wait() != 0:
        raise RuntimeError(f"the unkilled {what} failed (exit {process.returncode})")
    return times


def run_and_kill(
    what: str, config: Path, at: datetime, names: frozenset[str], delay: float
) -> str | None:
    """Start the driver; ``delay`` seconds into the first of ``names``, SIGKILL it.

    Returns the stage it was in when killed, or None when it finished first.
    """
    process = driver(what, config, at)
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    stream = process.stdout

    def read() -> None:
        for line in stream:
            lines.put(line.strip())
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stage, deadline = "", None
    while True:
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            process.send_signal(signal.SIGKILL)
            process.wait()
            reader.join()
            stream.close()
            return stage
        if line is None:  # it finished before the kill
            process.wait()
            reader.join()
            stream.close()
            return None
        if line.startswith("STAGE "):
            stage = line.split(" ", 1)[1]
            if deadline is None and stage in names:
                deadline = time.monotonic() + delay


def finish(config: Path, at: datetime) -> None:
    """A normal run, to the end."""
    timed_stages("run", config, at)


def reset(store_url: str, folder: Path) -> None:
    """Empty a PostgreSQL database (a SQLite store is a new file)."""
    if store_url.startswith("postgresql"):
        engine = connect(store_url)
        drop_everything(engine)
        engine.dispose()


def store_rows(store_url: str) -> tuple[int, int]:
    engine = connect(store_url)
    try:
        with engine.connect() as connection:
            tables = set(connection.dialect.get_table_names(connection))
            if "customer" not in tables:
                return (0, 0)
            customers = connection.execute(text("SELECT COUNT(*) FROM customer")).scalar_one()
            lines = connection.execute(text("SELECT COUNT(*) FROM transaction_line")).scalar_one()
            return (int(customers), int(lines))
    finally:
        engine.dispose()


def suppress_some(store_url: str, count: int, seed: int) -> set[str]:
    """Suppress ``count`` customers who have queued messages (they unsubscribe before delivery)."""
    with opened_store(store_url) as engine, engine.begin() as connection:
        queued = sorted(
            connection.execute(
                text("SELECT DISTINCT customer_id FROM message WHERE status = 'queued'")
            ).scalars()
        )
        chosen = random.Random(seed).sample(queued, min(count, len(queued)))
        for customer in chosen:
            connection.execute(
                text(
                    "INSERT INTO suppression (customer_id, reason, created_at) "
                    "VALUES (:c, 'unsubscribed', :t)"
                ),
                {"c": customer, "t": "2026-11-23 12:00:00.000000"},
            )
    return set(chosen)


def chain(
    stage: str,
    store: str,
    server_url: str | None,
    folder: Path,
    kills: int,
    customers: int,
    seed: int,
) -> Outcome:
    """Kill ``kills`` times in ``stage`` on a fresh store, finish, and count the deliveries.

    ``server_url`` is the PostgreSQL database to use (emptied first), or None for SQLite files.
    """
    what, channels, names = STAGES[stage]
    rng = random.Random(f"{seed}:{store}:{stage}")
    outcome = Outcome(store, stage)
    rounds = kills if stage in DELIVERY else 1
    # The reference: the same runs, unkilled, in a store of their own.
    with sinks(folder / "reference") as live:
        store_url = server_url or f"sqlite:///{folder / 'reference.db'}"
        reset(store_url, folder)
        config = workspace(folder / "reference", store_url, channels, live, customers)
        lengths = timed_stages(what, config, AT)
        if what == "load":
            full = store_rows(store_url)
            finish(config, AT)
        else:
            for day in range(1, rounds):
                lengths = timed_stages("run", config, AT + timedelta(days=day))
        expected = live.received()
    length = sum(seconds for name, seconds in lengths.items() if name in names)
    with sinks(folder / "killed") as live:
        store_url = server_url or f"sqlite:///{folder / 'killed.db'}"
        reset(store_url, folder)
        config = workspace(folder / "killed", store_url, channels, live, customers)
        suppressed: set[str] = set()
        delivered_before: Counter[str] = Counter()
        attempts = 0
        if stage in DELIVERY:
            for day in range(rounds):
                if day == rounds // 2:
                    # Some customers with queued messages unsubscribe: they get nothing more.
                    delivered_before = live.received()
                    suppressed = suppress_some(store_url, 5, seed)
                killed = run_and_kill(
                    what, config, AT + timedelta(days=day), names, rng.uniform(0, length)
                )
                outcome.kills += killed is not None
                outcome.delivery_kills += killed == "Delivering"
            finish(config, AT + timedelta(days=rounds - 1))
        else:
            while outcome.kills < kills and attempts < 4 * kills:
                attempts += 1
                killed = run_and_kill(what, config, AT, names, rng.uniform(0, length))
                if killed is None:
                    if what == "load":
                        continue
                    break  # the run finished before its kill: nothing left to kill here
                outcome.kills += 1
                # A kill meant for a stage may land in the next one, delivery included.
                outcome.delivery_kills += killed == "Delivering"
                if what == "load" and store_rows(store_url) not in {(0, 0), full}:
                    outcome.mixed_loads += 1
            finish(config, AT)
        finish(config, AT + timedelta(days=max(rounds - 1, 0)))  # and again: nothing more
        received = live.received()
    wanted = {
        key for key in expected if key.split(":")[1] not in suppressed or delivered_before[key] > 0
    }
    outcome.expected = len(wanted)
    outcome.lost = sum(1 for key in wanted if received[key] == 0)
    repeats = Counter({key.split(":")[0]: 0 for key in received})
    for key, count in received.items():
        repeats[key.split(":")[0]] += max(count - 1, 0)
    for campaign, count in repeats.items():
        # Only a kill during SMTP or webhook delivery may leave a message in flight.
        if campaign in ("daily-mail", "daily-hook"):
            allowed = min(count, outcome.delivery_kills)
            outcome.in_flight_repeats += allowed
            outcome.duplicates += count - allowed
        else:
            outcome.duplicates += count
    outcome.after_suppression = sum(
        received[key] - delivered_before[key] for key in received if key.split(":")[1] in suppressed
    )
    unexpected = [key for key in received if key not in expected]
    if unexpected:
        outcome.notes.append(f"{len(unexpected)} messages the reference did not send")
    return outcome


def run(
    stores: list[str],
    stages: list[str],
    kills: int,
    customers: int,
    seed: int,
    postgres_url: str | None = None,
) -> list[Outcome]:
    """Every chain of ``stages`` on every store; ``postgres_url`` names a database to empty and
    use (default: ``CAMPAIGN_TEST_POSTGRES_URL``, or a private server)."""
    outcomes = []
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        for store in stores:
            url: str | None = None
            if store == "postgresql":
                url = postgres_url or stack.enter_context(postgres_server())
                if url is None:
                    raise SystemExit("no PostgreSQL: install it or set CAMPAIGN_TEST_POSTGRES_URL")
            for stage in stages:
                folder = Path(scratch) / store / stage
                server = url if store == "postgresql" else None
                outcome = chain(stage, store, server, folder, kills, customers, seed)
                outcomes.append(outcome)
                print(
                    f"{store:10} {stage:8} kills {outcome.kills:3}  expected {outcome.expected:6,}"
                    f"  lost {outcome.lost}  duplicates {outcome.duplicates}"
                    f"  in flight {outcome.in_flight_repeats}"
                    f"  after suppression {outcome.after_suppression}"
                    f"  mixed loads {outcome.mixed_loads}",
                    file=sys.stderr,
                    flush=True,
                )
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| store | stage | kills | messages expected | lost | duplicates | in flight at a kill, "
        "re-sent with the same key | sent after suppression | half-loaded stores |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.store} | {o.stage} | {o.kills} | {o.expected:,} | {o.lost} | {o.duplicates} "
            f"| {o.in_flight_repeats} | {o.after_suppression} | {o.mixed_loads} |"
        )
    total = sum(o.kills for o in outcomes)
    lines.append(
        f"| **all** | | **{total}** | | **{sum(o.lost for o in outcomes)}** | "
        f"**{sum(o.duplicates for o in outcomes)}** | "
        f"**{sum(o.in_flight_repeats for o in outcomes)}** | "
        f"**{sum(o.after_suppression for o in outcomes)}** | "
        f"**{sum(o.mixed_loads for o in outcomes)}** |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills per stage (default 20)")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--stages", nargs="+", default=list(STAGES))
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args(argv)
    started = time.monotonic()
    outcomes = run(args.stores, args.stages, args.kills, args.customers, args.seed)
    print(table(outcomes))
    print(f"\n{time.monotonic() - started:.0f} s")
    bad = any(o.lost or o.duplicates or o.after_suppression or o.mixed_loads for o in outcomes)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
