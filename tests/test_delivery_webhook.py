"""The webhook channel against a real local HTTP server: signed JSON per message and per batch,
500s and timeouts retried, other 4xx final."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.delivery import make_channel
from campaigns.delivery.base import Result
from campaigns.delivery.drain import DrainResult, drain, utc_now
from campaigns.errors import DeliveryError
from store import outbox
from store.bulk import read_frame
from tests.delivery_kit import batch_of, config_with, outbox_rows
from tests.http_server import Hook, http_server

SECRET = "whsec-test"


def hook_config(tmp_path: Path, url: str, store_url: str = "sqlite://", **settings: Any) -> Config:
    channel = {"type": "webhook", "url": url, "secret_env": "HOOK_SECRET", **settings}
    return config_with(tmp_path, store_url, {"crm": channel})


def test_each_message_is_posted_as_signed_json(tmp_path: Path) -> None:
    hook = Hook()
    with http_server(hook) as url:
        channel = make_channel("crm", hook_config(tmp_path, url), environ={"HOOK_SECRET": SECRET})
        rows = outbox_rows(["a@example.com", None], "crm")
        rows["headers"] = ['{"X-Campaign": "winback"}', None]
        outcome = channel.send(batch_of(rows), "x")
    assert outcome.results == [Result.sent(url)] * 2
    headers, body = hook.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == "winback:c0:2026-11-23T10:00Z"
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Campaign-Signature"] == f"sha256={expected}"
    assert json.loads(body) == {
        "idempotency_key": "winback:c0:2026-11-23T10:00Z",
        "campaign": "winback",
        "customer_id": "c0",
        "segment_id": 4,
        "variant": None,
        "recipient": "a@example.com",
        "subject": "Hello 0",
        "body_text": "We miss you.",
        "body_html": "<p>We miss you.</p>",
        "headers": {"X-Campaign": "winback"},
    }
    assert json.loads(hook.requests[1][1])["recipient"] is None


def test_a_batch_is_one_request(tmp_path: Path) -> None:
    hook = Hook()
    with http_server(hook) as url:
        config = hook_config(tmp_path, url, mode="batch", headers={"X-Tenant": "shop"})
        channel = make_channel("crm", config, environ={"HOOK_SECRET": SECRET})
        outcome = channel.send(batch_of(outbox_rows(["a@x.com", "b@x.com", "c@x.com"], "crm")), "x")
    assert outcome.results == [Result.sent(url)] * 3
    [(headers, body)] = hook.requests
    assert headers["X-Tenant"] == "shop"
    assert "Idempotency-Key" not in headers
    keys = [m["idempotency_key"] for m in json.loads(body)["messages"]]
    assert keys == [f"winback:c{i}:2026-11-23T10:00Z" for i in range(3)]


def test_500s_and_timeouts_are_retried_and_other_4xx_fail(tmp_path: Path) -> None:
    hook = Hook(plan={1: 500, 2: "stall", 3: 400, 4: 429})
    with http_server(hook) as url:
        config = hook_config(tmp_path, url, timeout=0.3)
        channel = make_channel("crm", config, environ={"HOOK_SECRET": SECRET})
        outcome = channel.send(
            batch_of(outbox_rows(["a@x", "b@x", "c@x", "d@x", "e@x"], "crm")), ""
        )
    assert outcome.results == [
        Result.retry("HTTP 500 Internal Server Error"),
        Result.retry("no reply within 0.3 s"),
        Result.failed("HTTP 400 Bad Request"),
        Result.retry("HTTP 429 Too Many Requests"),
        Result.sent(url),
    ]


def test_unreachable_and_missing_secret(tmp_path: Path) -> None:
    config = hook_config(tmp_path, "http://127.0.0.1:9/hook")
    with pytest.raises(DeliveryError) as error:
        make_channel("crm", config, environ={})
    assert str(error.value) == (
        "channel 'crm': environment variable HOOK_SECRET is not set "
        "(secret_env = 'HOOK_SECRET' in config.toml)"
    )
    channel = make_channel("crm", config, environ={"HOOK_SECRET": SECRET})
    outcome = channel.send(batch_of(outbox_rows(["a@x"], "crm")), "")
    assert outcome.results == [
        Result.retry("cannot reach http://127.0.0.1:9/hook: [Errno 111] Connection refused")
    ]


def test_drain_retries_until_the_receiver_recovers(
    tmp_path: Path, fresh_store: Engine, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    outbox.enqueue(fresh_store, outbox_rows(["a@x", "b@x", "c@x"], "crm"))
    hook = Hook(plan={1: 503, 2: "stall", 4: 503})
    with http_server(hook) as url:
        config = hook_config(tmp_path, url, store_url, timeout=0.3, backoff_seconds=0)
        rounds = 0
        now = [datetime(2026, 11, 23, 12, 0)]
        while outbox.counts_by_status(fresh_store) != {"sent": 3}:
            drain(fresh_store, config, clock=lambda: now[0])
            now[0] += timedelta(seconds=2)
            rounds += 1
    # A drain tries each message once: the one that failed twice is sent by the third drain.
    assert rounds == 3
    keys = [json.loads(body)["idempotency_key"] for _, body in hook.requests]
    # Each message reached the receiver until it answered 2xx; its key lets it drop repeats.
    assert sorted(set(keys)) == [f"winback:c{i}:2026-11-23T10:00Z" for i in range(3)]
    attempts = read_frame(fresh_store, "SELECT attempts FROM message ORDER BY id")
    assert attempts["attempts"].tolist() == [3, 2, 1]


def test_a_slow_batch_keeps_its_lease(
    tmp_path: Path, fresh_store: Engine, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    outbox.enqueue(fresh_store, outbox_rows(["a@x"], "crm"))
    hook = Hook(delay=1.5)
    with http_server(hook) as url:
        config = hook_config(tmp_path, url, store_url, lease_seconds=0.6)
        results: list[DrainResult] = []
        sender = threading.Thread(target=lambda: results.append(drain(fresh_store, config)))
        sender.start()
        time.sleep(1.0)  # past the first lease: only the heartbeat keeps the batch claimed
        stolen = outbox.claim(fresh_store, "crm", "another-worker", utc_now())
        sender.join()
    assert stolen.empty
    assert sum(results[0].sent.values()) == 1
    assert len(hook.requests) == 1
