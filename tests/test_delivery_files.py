"""The file channel's formats and manifests, the outbox's retry schedule and the rate limiter."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from campaigns.delivery import FileChannel
from campaigns.delivery._rate import RateLimiter
from campaigns.delivery.base import Result
from campaigns.delivery.drain import backoff
from store import outbox
from tests.delivery_kit import AT, batch_of, outbox_rows


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_each_format_with_a_manifest_and_checksum(tmp_path: Path, fmt: str) -> None:
    rows = outbox_rows(["a@example.com", "b@example.com", None], "export")
    rows.loc[2, "segment_id"] = 2
    channel = FileChannel("export", tmp_path, fmt)
    outcome = channel.send(batch_of(rows), "20261123T1200-run1")
    path = tmp_path / "winback" / f"20261123T1200-run1.{fmt}"
    assert outcome.results == [Result.sent(str(path))] * 3
    manifest = json.loads((tmp_path / "winback" / "20261123T1200-run1.manifest.json").read_text())
    data = path.read_bytes()
    assert manifest == {
        "file": path.name,
        "format": fmt,
        "messages": 3,
        "by_segment": {"2": 1, "4": 2},
        "by_variant": {"": 3},
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "created_at": manifest["created_at"],
    }
    if fmt == "parquet":
        table = pq.read_table(path).to_pandas()
    elif fmt == "csv":
        table = pd.read_csv(path)
    else:
        table = pd.read_json(path, lines=True)
    assert table["idempotency_key"].tolist() == rows["idempotency_key"].tolist()
    assert table["segment_id"].tolist() == [4, 4, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, "20261123T1200-run1.manifest.json"]
    )  # no temporary file left behind


def test_an_export_never_replaces_another(tmp_path: Path) -> None:
    channel = FileChannel("export", tmp_path, "csv")
    rows = batch_of(outbox_rows(["a@example.com"], "export"))
    channel.send(rows, "label")
    again = channel.send(rows, "label")
    assert again.results == [Result.sent(str(tmp_path / "winback" / "label-2.csv"))]


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n, 60).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(30, 60) == timedelta(hours=1)
    assert backoff(10_000, 60) == timedelta(hours=1)


def test_a_retry_is_not_claimed_before_its_time(fresh_store: Engine) -> None:
    outbox.enqueue(fresh_store, outbox_rows(["a@example.com", "b@example.com"], "export"))
    batch = outbox.claim(fresh_store, "export", "w", AT)
    ids = batch["id"].astype(int).tolist()
    outbox.mark_retry(fresh_store, ids[:1], ["451 busy"], [AT + timedelta(minutes=2)])
    outbox.mark_sent(fresh_store, ids[1:], ["x"], AT)
    assert outbox.claim(fresh_store, "export", "w", AT + timedelta(minutes=1)).empty
    again = outbox.claim(fresh_store, "export", "w", AT + timedelta(minutes=2))
    assert again["id"].astype(int).tolist() == ids[:1]
    assert again["last_error"].tolist() == ["451 busy"]
    assert again["attempts"].astype(int).tolist() == [2]
    assert outbox.mark_bounced(fresh_store, ids[:1], ["550 gone"], AT) == 1
    assert outbox.mark_bounced(fresh_store, ids[:1], ["550 gone"], AT) == 0  # already suppressed
    assert outbox.counts_by_status(fresh_store) == {"sent": 1, "bounced": 1}


def test_the_rate_limiter_spaces_calls_evenly() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert sleeps == [0.25, 0.25, 0.25, 0.25]
    unlimited = RateLimiter(None, clock=lambda: now[0], sleep=sleep)
    unlimited.wait()
    assert len(sleeps) == 4
