"""Time delivery by 1 and 2 worker processes sharing one PostgreSQL outbox.

    python -m benchmarks.workers --postgres postgresql+psycopg://u@host/db
    python -m benchmarks.workers --messages 4000 --latency-ms 20 --postgres URL

What ``campaign run --workers N`` does after rendering (:mod:`campaigns.delivery.parallel`): the
run's process and ``N - 1`` more drain the outbox, each claiming its own batches with
``FOR UPDATE SKIP LOCKED``. ``--messages`` queued e-mails are delivered by SMTP to a local aiosmtpd
server (its own process) that answers each message after ``--latency-ms``, as a provider's
server across a network does; one SMTP connection per process. Each figure is also given as a
ratio to the one-process drain measured in the same invocation, and beside the plain baseline
of the same messages sent by ``smtplib`` in one loop without a store. The database named by
``--postgres`` is emptied.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.delivery import AT, free_port, planned, reset
from campaigns.config.schema import Config
from campaigns.delivery.parallel import drain_with_workers
from store import outbox
from store.engine import opened_store

_SERVER = textwrap.dedent(
    """
    import asyncio, sys, time
    from aiosmtpd.controller import Controller

    class Slow:
        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep({latency})
            return "250 OK"

    controller = Controller(Slow(), hostname="127.0.0.1", port={port})
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    """
)


@contextmanager
def slow_smtp(latency_s: float) -> Iterator[int]:
    """An aiosmtpd server in its own process answering each message after ``latency_s``."""
    port = free_port()
    code = _SERVER.format(latency=latency_s, port=port)
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield port
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def _config(root: Path, url: str, port: int) -> Config:
    return Config.model_validate(
        {
            "store": {"url": url},
            "source": {"type": "demo", "customers": 50},
            "settings": {"unsubscribe_base_url": "https://shop.example/unsubscribe"},
            "channels": {
                "mail": {
                    "type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from": "Bean & Leaf <news@beanandleaf.example>",
                    "connections": 1,
                    "batch_size": 100,
                }
            },
            "root": root,
        }
    )


def plain(count: int, port: int) -> float:
    """Seconds to send ``count`` messages of the benchmark's size with smtplib in one loop."""
    rows = planned(count, "mail")
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for recipient, subject, body in zip(
            rows["recipient"], rows["subject"], rows["body_text"], strict=True
        ):
            message = EmailMessage()
            message["From"] = "news@beanandleaf.example"
            message["To"] = recipient
            message["Subject"] = subject
            message.set_content(body)
            client.send_message(message)
    return time.perf_counter() - started


def drained(config: Config, url: str, count: int, workers: int) -> float:
    """Seconds for ``workers`` processes to deliver ``count`` queued messages."""
    reset(url)
    with opened_store(url) as engine:
        outbox.enqueue(engine, planned(count, "mail"))
        started = time.perf_counter()
        result = drain_with_workers(engine, config, AT, f"bench{workers}", workers)
        seconds = time.perf_counter() - started
        assert sum(result.sent.values()) == count, result
        assert outbox.counts_by_status(engine) == {"sent": count}
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("CAMPAIGN_TEST_POSTGRES_URL"),
        help="The PostgreSQL database to use (emptied). Default: $CAMPAIGN_TEST_POSTGRES_URL.",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error("--postgres URL is needed (workers share a PostgreSQL outbox)")
    count = args.messages
    with slow_smtp(args.latency_ms / 1000) as port, tempfile.TemporaryDirectory() as root:
        config = _config(Path(root), args.postgres, port)
        baseline = plain(count, port)
        times = {n: drained(config, args.postgres, count, n) for n in args.workers}
    one = times.get(1)
    table = Table(
        title=f"{count:,} e-mails, {args.latency_ms:g} ms per message at the server, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for column in ("delivery", "seconds", "messages/s", "x plain smtplib", "speed-up vs 1"):
        table.add_column(column, justify="left" if column == "delivery" else "right")
    table.add_row("plain smtplib loop, no store", f"{baseline:.2f}", f"{count / baseline:,.0f}")
    for workers, seconds in times.items():
        table.add_row(
            f"{workers} worker process{'es' * (workers > 1)}",
            f"{seconds:.2f}",
            f"{count / seconds:,.0f}",
            f"{seconds / baseline:.2f}",
            f"{one / seconds:.2f}" if one else "",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
