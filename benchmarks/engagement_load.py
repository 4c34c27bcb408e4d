"""The endpoint under load: one ``campaign listen`` process, client processes with keep-alive
connections requesting tracked links.

    python -m benchmarks.engagement_load [--store URL]... [--write-behind-ms MS]...
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from sqlalchemy import text

from store.engine import open_store

SECRET = "load-benchmark-signing-key-0123456789"


def _config(folder: Path, url: str, port: int, write_behind_ms: float = 0) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[store]\nurl = "{url}"\n[source]\ntype = "demo"\n[channels.export]\ntype = "file"\n'
        f'[tracking]\nbase_url = "http://127.0.0.1:{port}"\nsecret_env = "LOAD_SECRET"\n'
        f"machine_click_seconds = 0\nwrite_behind_ms = {write_behind_ms:g}\n"
    )
    return path


#: Messages the load is spread over (one hot row would measure lock queueing, not the endpoint).
MESSAGES = 2_000


def _messages(url: str) -> list[str]:
    """Store :data:`MESSAGES` sent messages with one link each; return their tokens."""
    from campaigns.engagement.tokens import Signer, message_ref

    signer = Signer([SECRET.encode()])
    keys = [f"load:C{i}:w" for i in range(MESSAGES)]
    engine = open_store(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM engagement_event"))
            connection.execute(text("DELETE FROM message WHERE campaign = 'load'"))
            connection.execute(
                text(
                    'INSERT INTO message (idempotency_key, run_id, campaign, "window", '
                    "customer_id, channel, subject, body_text, status, attempts, created_at, "
                    "sent_at, ref, topic, links) VALUES (:key, 0, 'load', 'w', :customer, "
                    "'export', '', '', 'sent', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', "
                    ":r, 'marketing', :links)"
                ),
                [
                    {
                        "key": key,
                        "customer": key.split(":")[1],
                        "r": message_ref(key),
                        "links": json.dumps(["https://shop.example/landing"]),
                    }
                    for key in keys
                ],
            )
    finally:
        engine.dispose()
    return [signer.token(message_ref(key)) for key in keys]


def _client(
    port: int,
    tokens: list[str],
    count: int,
    threads: int,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    latencies: list[float] = []
    answered = [0]
    lock = threading.Lock()

    def work(n: int, offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        ok = 0
        for i in range(n):
            path = f"/c/0/{tokens[(offset + i * 7) % len(tokens)]}"
            start = time.perf_counter()
            connection.request("GET", path, headers={"User-Agent": "Mozilla/5.0 load"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            ok += response.status == 302
        connection.close()
        with lock:
            latencies.extend(mine)
            answered[0] += ok

    workers = [
        threading.Thread(target=work, args=(count // threads, t * 131)) for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((latencies, answered[0]))


def load(
    requests: int, clients: int, processes: int, store: str | None, write_behind_ms: float = 0
) -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        url = store or f"sqlite:///{folder}/load.db"
        from campaigns.engagement.server import free_port

        port = free_port()
        config = _config(Path(folder), url, port, write_behind_ms)
        tokens = _messages(url)
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from cli.main import main; main()",
                "listen",
                "-c",
                str(config),
                "--http",
                f"127.0.0.1:{port}",
            ],
            env={**os.environ, "LOAD_SECRET": SECRET},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("campaign listen did not start") from None
                    time.sleep(0.1)
            queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
            per = requests // processes
            started = time.perf_counter()
            runners = [
                multiprocessing.Process(
                    target=_client, args=(port, tokens[p::processes], per, clients, queue)
                )
                for p in range(processes)
            ]
            for runner in runners:
                runner.start()
            results = [queue.get() for _ in runners]
            for runner in runners:
                runner.join()
            seconds = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        latencies = sorted(x for lat, _ in results for x in lat)
        answered = sum(a for _, a in results)
        engine = open_store(url)
        try:
            with engine.connect() as connection:
                stored = connection.execute(
                    text("SELECT COALESCE(SUM(1 + repeats), 0) FROM engagement_event")
                ).scalar_one()
        finally:
            engine.dispose()
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    if write_behind_ms:
        backend += f", clicks stored every {write_behind_ms:g} ms"
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    return [
        (
            f"redirects, one listen process, {backend}",
            f"{seconds:.2f} s",
            f"{len(latencies) / seconds:,.0f}/s ({len(latencies):,} requests, "
            f"{processes}x{clients} clients)",
        ),
        ("latency p50 / p99", "", f"{p50:.1f} ms / {p99:.1f} ms"),
        ("events lost (302s answered - clicks stored)", "", f"{answered - int(stored)}"),
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.engagement_load [--store URL ...]``: the load on each store given
    (default: a temporary SQLite store)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--store", action="append", default=None, help="store URL (repeat for several)"
    )
    parser.add_argument(
        "--write-behind-ms",
        type=float,
        action="append",
        default=None,
        help="tracking.write_behind_ms (repeat for several; default 0: a transaction per click)",
    )
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str]] = []
    for store in args.store or [None]:
        for batch in args.write_behind_ms or [0.0]:
            rows += load(args.requests, args.clients, args.processes, store, batch)
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'time':>9}  result")
    print("-" * (width + 40))
    for what, seconds_text, result in rows:
        print(f"{what:<{width}}  {seconds_text:>9}  {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
