"""Time the outbox path of a run against a plain bulk write of the same rows.

    python -m benchmarks.outbox --messages 1000000
    python -m benchmarks.outbox --messages 100000 --postgres postgresql+psycopg://u@host/db

The path is what ``campaign run`` does after rendering, through the same library calls: write the
rendered messages to the outbox (``store.outbox.enqueue``), then ``drain`` them through a CSV file
channel (claim a batch, the send-time suppression check, stage the file, record it, rename it,
mark its messages sent; batches of 100,000). Issue 14's target: at most 15 s for 1,000,000
messages on SQLite.

The plain baselines are measured in the same process on the same rows, so the ratios survive a
busy machine: ``executemany`` of the same tuples into a bare table (no index, no constraint) of a
fresh SQLite file (PostgreSQL: ``COPY`` of the same CSV into a bare table), and writing the same
rows as one CSV file with Arrow. "x plain" divides the path by the two together: what storing the
rows once and writing them out once costs with nothing else around it.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from rich.console import Console
from rich.table import Table

from benchmarks.delivery import AT, planned, reset
from campaigns.config import load_config
from campaigns.delivery.drain import drain
from campaigns.delivery.export import EXPORT_COLUMNS
from campaigns.engagement.tokens import message_ref
from store import outbox
from store.engine import opened_store

UNSUBSCRIBE = "https://beanandleaf.example/u/"


def rendered(count: int) -> pd.DataFrame:
    """``count`` rendered messages as a run hands them to the outbox (refs and headers too)."""
    frame = planned(count)
    refs = [message_ref(k) for k in frame["idempotency_key"]]
    headers = [
        f'{{"List-Unsubscribe": "<{UNSUBSCRIBE}{r}>", "List-Unsubscribe-Post": '
        '"List-Unsubscribe=One-Click"}'
        for r in refs
    ]
    return frame.assign(ref=refs, headers=headers, topic=None, links=None)


def _config(folder: Path, url: str) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[source]\ntype = "demo"\n[store]\nurl = "{url}"\n'
        f'[channels.export]\ntype = "file"\ndirectory = "{folder}/out"\n'
        'format = "csv"\nbatch_size = 100000\n'
    )
    return path


def path_seconds(url: str, folder: Path, frame: pd.DataFrame) -> tuple[float, float]:
    """Seconds to enqueue ``frame`` and to drain it, on the store at ``url``."""
    config = load_config(_config(folder, url))
    with opened_store(config.store.url, config.root) as engine:
        started = time.perf_counter()
        added = outbox.enqueue(engine, frame)
        written = time.perf_counter() - started
        assert added == len(frame), added
        started = time.perf_counter()
        drained = drain(engine, config, AT)
        delivered = time.perf_counter() - started
        assert sum(drained.sent.values()) == len(frame), drained.sent
        assert outbox.counts_by_status(engine) == {"sent": len(frame)}
    return written, delivered


def plain_sqlite_insert(folder: Path, frame: pd.DataFrame) -> float:
    """``executemany`` of the outbox rows' tuples into a bare table of a fresh SQLite file."""
    columns = [c for c in outbox.MESSAGE_COLUMNS if c in frame.columns]
    rows = list(
        zip(*(frame[c].astype(object).where(frame[c].notna(), None) for c in columns), strict=True)
    )
    rows = [tuple(str(v) if isinstance(v, pd.Timestamp) else v for v in r) for r in rows]
    connection = sqlite3.connect(folder / "plain.db")
    try:
        quoted = ", ".join(f'"{c}"' for c in columns)
        connection.execute(f"CREATE TABLE plain ({quoted})")
        marks = ", ".join("?" for _ in columns)
        started = time.perf_counter()
        connection.executemany(f"INSERT INTO plain VALUES ({marks})", rows)
        connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def plain_postgres_copy(url: str, frame: pd.DataFrame) -> float:
    """``COPY`` of the same rows (as CSV) into a bare table of text columns."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    columns = [c for c in outbox.MESSAGE_COLUMNS if c in frame.columns]
    data = _csv_bytes(frame[columns])
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS plain_bench")
        typed = ", ".join(f'"{c}" text' for c in columns)
        cursor.execute(f"CREATE TABLE plain_bench ({typed})")
        started = time.perf_counter()
        with cursor.copy("COPY plain_bench FROM STDIN (FORMAT csv, HEADER true)") as copy:
            copy.write(data)
        connection.commit()
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE plain_bench")
        connection.commit()
    return seconds


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return bytes(sink.getvalue())


def plain_file_write(folder: Path, frame: pd.DataFrame) -> float:
    """The exported columns of the same rows as one CSV file, written with Arrow and flushed."""
    started = time.perf_counter()
    table = pa.Table.from_pandas(
        frame[list(EXPORT_COLUMNS)].astype({"segment_id": "Int64"}), preserve_index=False
    )
    path = folder / "plain.csv"
    pacsv.write_csv(table, path)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL database the benchmark may empty")
    args = parser.parse_args(argv)
    count = args.messages
    load_before = os.getloadavg()
    frame = rendered(count)
    rows: list[tuple[str, str, float]] = []
    ratios: list[tuple[str, float, float]] = []
    stores = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    for name, url in stores:
        with tempfile.TemporaryDirectory(prefix="campaign-outbox-bench-") as tmp:
            folder = Path(tmp)
            if url is None:
                plain_store = plain_sqlite_insert(folder, frame)
                store_url = f"sqlite:///{folder}/bench.db"
            else:
                reset(url)
                plain_store = plain_postgres_copy(url, frame)
                store_url = url
            plain_file = plain_file_write(folder, frame)
            try:
                written, delivered = path_seconds(store_url, folder, frame)
            finally:
                if url is not None:
                    reset(url)
        total = written + delivered
        plain = plain_store + plain_file
        rows += [
            ("outbox write (enqueue)", name, written),
            ("claim + export + mark sent (drain)", name, delivered),
            ("path total", name, total),
            (
                "plain: bare-table " + ("executemany" if url is None else "COPY"),
                name,
                plain_store,
            ),
            ("plain: the same rows as one CSV file", name, plain_file),
        ]
        ratios.append((name, total, total / plain))
    out = Console(width=110)
    table = Table(title=f"Outbox path, {count:,} messages ({os.cpu_count()} cores)")
    for column in ("step", "store", "seconds", "messages/s"):
        table.add_column(column, justify="left" if column in ("step", "store") else "right")
    for step, store, seconds in rows:
        table.add_row(step, store, f"{seconds:.2f}", f"{count / seconds:,.0f}")
    out.print(table)
    for name, total, ratio in ratios:
        out.print(f"{name}: path {total:.2f} s = {ratio:.1f}x plain (bare-table write + CSV file)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_after = os.getloadavg()
    out.print(
        f"Peak RSS {peak:,.0f} MiB. Load average (1, 5, 15 min) before {load_before[0]:.2f} "
        f"{load_before[1]:.2f} {load_before[2]:.2f}, after {load_after[0]:.2f} "
        f"{load_after[1]:.2f} {load_after[2]:.2f}"
    )


if __name__ == "__main__":
    main()
