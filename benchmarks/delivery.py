"""Time delivery: 1M planned messages into the outbox, exported to CSV and Parquet, and SMTP.

    python -m benchmarks.delivery
    python -m benchmarks.delivery --messages 1000000 --postgres postgresql+psycopg://u@host/db

Steps, each timed: write the planned messages to the outbox (``store.outbox.enqueue``, the call a
run makes) on SQLite and, with ``--postgres``, on PostgreSQL (a database it may empty); claim them
all (one UPDATE and read-back); write them as CSV and as Parquet with the file channel (manifest
and checksum included); mark them sent. Then SMTP throughput through the real channel against a
local aiosmtpd server (a separate process that accepts and discards) with 1 and 4 connections.
The machine's load average is printed, as other work on it skews the figures.

``--drain N`` times instead what a run's delivery does with N file-channel messages: ``drain``
(claim in batches of 100,000, the send-time suppression check, staged CSV files, record, rename,
mark sent), on the store's schema and again with the ``claimed_by`` index dropped (every step
after a claim then scans the outbox), against the plain baseline of writing the same rows to one
CSV file with pandas.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from campaigns.config import load_config
from campaigns.config.schema import SmtpChannel as SmtpSettings
from campaigns.delivery import FileChannel, SmtpChannel
from campaigns.delivery.base import Fate
from campaigns.delivery.drain import drain
from store import outbox
from store.engine import connect, opened_store
from store.migrate import drop_everything

AT = datetime(2026, 11, 23, 12, 0)
TEXT = (
    "Hello {name},\n\nIt has been a while since your last order. Here is 15% off your next bag of "
    "beans, valid for a week: use code COMEBACK15 at checkout.\n\nBean & Leaf\n"
    "Unsubscribe: https://beanandleaf.example/unsubscribe?customer={cid}&campaign=winback\n"
)
HTML = (
    "<html><body><p>Hello {name},</p><p>It has been a while since your last order. Here is "
    "<b>15% off</b> your next bag of beans, valid for a week: use code COMEBACK15.</p>"
    '<p><a href="https://beanandleaf.example/unsubscribe?customer={cid}">Unsubscribe</a></p>'
    "</body></html>"
)


def planned(count: int, channel: str = "export") -> pd.DataFrame:
    """``count`` rendered messages of one campaign window, as a run hands them to the outbox."""
    ids = [f"C{i:07d}" for i in range(count)]
    return pd.DataFrame(
        {
            "idempotency_key": [f"winback:{c}:2026-11-23T10:00Z" for c in ids],
            "run_id": 1,
            "campaign": "winback",
            "window": "2026-11-23T10:00Z",
            "customer_id": ids,
            "segment_id": [1 + i % 4 for i in range(count)],
            "variant": None,
            "channel": channel,
            "recipient": [f"customer{i}@example.com" for i in range(count)],
            "subject": "We miss you: 15% off this week",
            "body_text": [TEXT.format(name="Ana", cid=c) for c in ids],
            "body_html": [HTML.format(name="Ana", cid=c) for c in ids],
            "created_at": AT,
        }
    )


def timed(rows: list[tuple[str, str, float, str]], label: str, store: str, count: int):  # type: ignore[no-untyped-def]
    """A context that appends (step, store, seconds, rate) to ``rows``."""

    @contextmanager
    def clock() -> Iterator[None]:
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        rows.append((label, store, seconds, f"{count / seconds:,.0f}/s"))

    return clock()


def bench_store(
    url: str, name: str, frame: pd.DataFrame, folder: Path, rows: list[tuple[str, str, float, str]]
) -> None:
    with opened_store(url) as engine:
        count = len(frame)
        with timed(rows, f"outbox write {count:,}", name, count):
            added = outbox.enqueue(engine, frame)
        assert added == count, added
        with timed(rows, f"claim {count:,}", name, count):
            batch = outbox.claim(engine, "export", "bench", AT, limit=count)
        assert len(batch) == count
        for fmt in ("csv", "parquet"):
            channel = FileChannel("export", folder / name, fmt)
            with timed(rows, f"export {fmt} {count:,}", name, count):
                outcome = channel.send(batch, f"bench-{fmt}")
        with timed(rows, f"mark sent {count:,}", name, count):
            ids = outcome.ids
            outbox.mark_sent(engine, ids, [r.destination for r in outcome.results], AT)
        assert outbox.counts_by_status(engine) == {"sent": count}


def bench_drain(count: int) -> None:
    """Time ``drain`` of ``count`` file-channel messages, with and without the claim index."""
    frame = planned(count)
    timings: dict[str, float] = {}
    for variant in ("indexed", "no claimed_by index"):
        with tempfile.TemporaryDirectory(prefix="campaign-drain-bench-") as folder:
            path = Path(folder) / "config.toml"
            path.write_text(
                f'[source]\ntype = "demo"\n[store]\nurl = "sqlite:///{folder}/bench.db"\n'
                f'[channels.export]\ntype = "file"\ndirectory = "{folder}/out"\n'
                'format = "csv"\nbatch_size = 100000\n'
            )
            config = load_config(path)
            with opened_store(config.store.url, config.root) as engine:
                outbox.enqueue(engine, frame)
                if variant != "indexed":
                    with engine.begin() as connection:
                        connection.execute(text("DROP INDEX ix_message_claimed_by"))
                started = time.perf_counter()
                drain(engine, config, AT)
                timings[variant] = time.perf_counter() - started
                assert outbox.counts_by_status(engine) == {"sent": count}
    with tempfile.TemporaryDirectory(prefix="campaign-drain-bench-") as folder:
        started = time.perf_counter()
        frame.to_csv(Path(folder) / "plain.csv", index=False)
        plain = time.perf_counter() - started
    out = Console(width=100)
    table = Table(
        title=f"Drain of {count:,} file-channel messages, SQLite ({os.cpu_count()} cores)"
    )
    for column in ("step", "seconds", "rate", "x plain CSV write"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step, seconds in [*timings.items(), ("plain: pandas to_csv of the same rows", plain)]:
        table.add_row(step, f"{seconds:.2f}", f"{count / seconds:,.0f}/s", f"{seconds / plain:.1f}")
    out.print(table)
    load = os.getloadavg()
    out.print(f"Load average (1, 5, 15 min) after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def reset(url: str) -> None:
    engine: Engine = connect(url)
    drop_everything(engine)
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sink_server() -> Iterator[int]:
    """aiosmtpd's discarding server, in its own process; yield its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
         "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait()


def bench_smtp(count: int, rows: list[tuple[str, str, float, str]]) -> None:
    batch = planned(count, "mail").assign(id=range(1, count + 1), attempts=1)
    with sink_server() as port:
        for connections in (1, 4):
            settings = SmtpSettings.model_validate(
                {
                    "type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from": "Bean & Leaf <news@beanandleaf.example>",
                    "connections": connections,
                }
            )
            channel = SmtpChannel("mail", settings, "https://beanandleaf.example/u", {})
            label = f"smtp {count:,}, {connections} connection{'s' * (connections > 1)}"
            with timed(rows, label, "aiosmtpd", count):
                outcome = channel.send(batch, "bench")
            channel.close()
            assert all(r.fate is Fate.SENT for r in outcome.results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL database the benchmark may empty")
    parser.add_argument("--smtp-messages", type=int, default=5_000)
    parser.add_argument("--drain", type=int, metavar="N", help="time drain of N file messages")
    args = parser.parse_args(argv)
    if args.drain:
        bench_drain(args.drain)
        return
    load_before = os.getloadavg()
    rows: list[tuple[str, str, float, str]] = []
    started = time.perf_counter()
    frame = planned(args.messages)
    rows.append(("render-free frame", "memory", time.perf_counter() - started, ""))
    with tempfile.TemporaryDirectory(prefix="campaign-delivery-bench-") as folder:
        bench_store(f"sqlite:///{folder}/bench.db", "SQLite", frame, Path(folder), rows)
        if args.postgres:
            reset(args.postgres)
            try:
                bench_store(args.postgres, "PostgreSQL", frame, Path(folder), rows)
            finally:
                reset(args.postgres)
    bench_smtp(args.smtp_messages, rows)
    table = Table(title=f"Delivery benchmark ({os.cpu_count()} cores)")
    for column in ("step", "store", "seconds", "rate"):
        table.add_column(column, justify="right" if column in ("seconds", "rate") else "left")
    for step, store, seconds, rate in rows[1:]:
        table.add_row(step, store, f"{seconds:.2f}", rate)
    out = Console(width=100)
    out.print(table)
    load_after = os.getloadavg()
    out.print(
        f"Load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} "
        f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )


if __name__ == "__main__":
    main()
