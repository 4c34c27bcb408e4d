"""The engagement endpoint, served for real by uvicorn on a free port, over each store backend:
tracked links, opens, one-click unsubscribe and the preferences page, provider webhooks, and
what each does (or must not do) to the store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from campaigns.delivery.drain import drain
from campaigns.engagement.tokens import Signer
from campaigns.engagement.webhooks import sign_generic, sign_mailgun
from campaigns.run import run_campaigns
from store.bulk import read_frame, time_param
from store.engine import open_store
from tests.engagement_kit import (
    AT,
    ENV,
    MAILGUN_KEY,
    SECRET,
    TRACKED_URL,
    WEBHOOK_SECRET,
    Served,
    events,
    free,
    http,
    serving,
    tracking_config,
)


@pytest.fixture
def served(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """A demo workspace with tracking, after one run at AT, and its endpoint serving."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    port = free()
    config = tracking_config(tmp_path, store_url, port)
    run_campaigns(config, at=AT)
    with serving(config, port) as server:
        yield server


def decoded(value: object) -> Any:
    """A JSON column's value: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def sent(served: Served, campaign: str, html: bool = False) -> dict[str, object]:
    with_html = " AND body_html IS NOT NULL" if html else ""
    frame = read_frame(
        served.engine,
        f"SELECT * FROM message WHERE campaign = :c AND status = 'sent'{with_html} "
        "ORDER BY id LIMIT 1",
        params={"c": campaign},
    )
    return frame.iloc[0].to_dict()


def test_a_click_redirects_to_the_exact_link_and_is_recorded_once_with_its_repeats(
    served: Served,
) -> None:
    message = sent(served, "winback")
    assert "https://beanandleaf.example/" not in str(message["body_text"])
    link = TRACKED_URL.search(str(message["body_text"]))
    assert link is not None
    targets = decoded(message["links"])

    first = http(link.group(0), headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/130"})
    again = http(link.group(0), headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/130"})

    assert first.status == again.status == 302
    assert first.headers["location"] == targets[0]
    assert targets[0].startswith("https://beanandleaf.example/")
    stored = events(served.engine)
    assert len(stored) == 1
    click = stored[0]
    assert (click["kind"], click["message_id"], click["campaign"], click["customer_id"]) == (
        "click",
        message["id"],
        "winback",
        message["customer_id"],
    )
    assert click["variant"] == message["variant"]
    assert click["repeats"] == 1
    assert not click["machine"]


def bad_tokens(good: str) -> dict[str, str]:
    token = good.rsplit("/", 1)[1]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    ref = Signer([SECRET.encode()]).read(token)
    assert ref is not None
    foreign = Signer([b"someone-else-s-key-0123456789"]).token(ref)
    return {
        "tampered": flipped,
        "truncated": token[:-3],
        "foreign": foreign,
        "garbage": "not-a-token",
        "too long": token + "AAAA",
        "non-ascii": "%C3%A9" * 10,
    }


def test_tampered_truncated_and_foreign_tokens_are_404_and_record_nothing(
    served: Served,
) -> None:
    message = sent(served, "winback")
    link = TRACKED_URL.search(str(message["body_text"]))
    assert link is not None
    for name, token in bad_tokens(link.group(0)).items():
        answer = http(f"{served.url}/c/0/{token}")
        assert answer.status == 404, name
        assert "location" not in {k.lower() for k in answer.headers}, name
        assert http(f"{served.url}/o/{token}.gif").status == 404, name
        assert http(f"{served.url}/u/{token}").status == 404, name
    assert events(served.engine) == []


def test_a_link_that_was_not_in_the_message_cannot_be_reached(served: Served) -> None:
    message = sent(served, "winback")
    token = Signer([SECRET.encode()]).token(str(message["ref"]))
    links = decoded(message["links"])
    # A genuine token, but the message has no such link; or no such message at all.
    unknown_message = Signer([SECRET.encode()]).token("0" * 32)
    for path in (
        f"c/{len(links)}/{token}",
        f"c/65536/{token}",
        f"c/-1/{token}",
        f"c/x/{token}",
        f"c/0/{unknown_message}",
        f"c/{token}",
    ):
        assert http(f"{served.url}/{path}").status == 404, path
    assert events(served.engine) == []


def test_opens_are_recorded_human_or_machine(served: Served) -> None:
    message = sent(served, "winback", html=True)
    pixel = str(message["body_html"]).split('<img src="', 1)[1].split('"', 1)[0]
    human = http(pixel, headers={"User-Agent": "Mozilla/5.0 (Macintosh) Safari/605"})
    proxy = http(pixel, headers={"User-Agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"})
    assert human.status == proxy.status == 200
    assert human.headers["content-type"] == "image/gif"
    assert human.body.startswith(b"GIF89a")
    opens = events(served.engine)
    assert sorted((e["kind"], bool(e["machine"])) for e in opens) == [
        ("open", False),
        ("open", True),
    ]


def test_one_click_unsubscribe_stops_the_topic_at_send_time_and_in_the_next_run(
    served: Served,
) -> None:
    engine = served.engine
    newsletter = read_frame(
        engine,
        "SELECT customer_id, headers FROM message WHERE campaign = 'newsletter' "
        "AND status = 'sent' ORDER BY id",
    )
    leaving = str(newsletter["customer_id"].iloc[0])
    headers = decoded(newsletter["headers"].iloc[0])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert leaving not in url

    answer = http(
        url,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert answer.status == 200
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT customer_id, topic FROM topic_suppression")).all()
    assert [tuple(r) for r in rows] == [(leaving, "newsletter")]
    # The next weekly newsletter goes to the others who got this one, not to them.
    run_campaigns(served.config, at=AT + timedelta(days=7))
    again = read_frame(
        engine,
        "SELECT customer_id FROM message WHERE campaign = 'newsletter' AND created_at > :t",
        params={"t": time_param(AT)},
    )
    assert leaving not in set(again["customer_id"])
    assert set(again["customer_id"]) & set(newsletter["customer_id"].iloc[1:])


def test_a_queued_message_of_an_unsubscribed_topic_is_withheld_but_transactional_goes(
    served: Served,
) -> None:
    engine = served.engine
    with engine.begin() as connection:
        vip = connection.execute(
            text(
                "SELECT customer_id FROM message WHERE campaign = 'vip-thanks' "
                "AND status = 'sent' ORDER BY id LIMIT 1"
            )
        ).scalar_one()
        other = connection.execute(
            text(
                "SELECT customer_id FROM message WHERE campaign = 'newsletter' "
                "AND status = 'sent' ORDER BY id LIMIT 1"
            )
        ).scalar_one()
        connection.execute(
            text(
                "UPDATE message SET status = 'queued' WHERE status = 'sent' "
                "AND customer_id IN (:a, :b)"
            ),
            {"a": vip, "b": other},
        )
        for customer in (vip, other):
            connection.execute(
                text(
                    "INSERT INTO topic_suppression (customer_id, topic, reason, created_at) "
                    "VALUES (:c, '*', 'complained', :t)"
                ),
                {"c": customer, "t": time_param(AT)},
            )

    result = drain(engine, served.config, AT, clock=lambda: AT + timedelta(hours=2))

    fates = read_frame(
        engine,
        "SELECT campaign, status, last_error FROM message WHERE customer_id IN (:a, :b)",
        params={"a": vip, "b": other},
    )
    # Transactional: a stop of all marketing does not apply to it.
    assert fates.loc[fates["campaign"] == "vip-thanks", "status"].tolist() == ["sent"]
    withheld = fates[fates["campaign"] == "newsletter"]
    assert withheld["status"].tolist() == ["suppressed"]
    assert withheld["last_error"].tolist() == ["suppressed: unsubscribed from newsletter"]
    assert result.suppressed == {"newsletter": 1}


def test_the_preferences_page_unsubscribes_from_one_topic_or_all(served: Served) -> None:
    message = sent(served, "newsletter")
    url = decoded(message["headers"])["List-Unsubscribe"].strip("<>")
    page = http(url)
    assert page.status == 200
    assert b"Unsubscribe from newsletter" in page.body
    answer = http(url, data=b"action=all")
    assert answer.status == 200
    assert b"You are unsubscribed from all marketing messages." in answer.body
    chosen = http(url, data=b"action=save&topic=marketing")
    assert b"You are unsubscribed from: newsletter" in chosen.body
    assert http(url, data=b"action=save&topic=nonsense").status == 400
    assert http(url, data=b"what=ever").status == 400
    with served.engine.connect() as connection:
        rows = connection.execute(text("SELECT topic FROM topic_suppression")).scalars().all()
    assert sorted(rows) == ["newsletter"]


def _generic(served: Served, payload: object, at: float | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, sign_generic(body, WEBHOOK_SECRET.encode(), int(at or time.time()))


def test_a_complaint_webhook_suppresses_once_and_a_replay_is_a_repeat(served: Served) -> None:
    message = sent(served, "winback")
    payload = {
        "events": [
            {"id": "evt-1", "type": "complaint", "message": f"<{message['ref']}@shop.example>"}
        ]
    }
    body, signature = _generic(served, payload)
    url = f"{served.url}/webhooks/events"

    first = http(url, data=body, headers={"X-Campaign-Signature": signature})
    again = http(url, data=body, headers={"X-Campaign-Signature": signature})

    assert first.status == again.status == 200
    assert first.body == b"stored 1, repeats 0, unmatched 0\n"
    assert again.body == b"stored 0, repeats 1, unmatched 0\n"
    stored = events(served.engine)
    assert [(e["kind"], e["customer_id"], e["repeats"]) for e in stored] == [
        ("complaint", message["customer_id"], 1)
    ]
    with served.engine.connect() as connection:
        rows = connection.execute(text("SELECT customer_id, topic FROM topic_suppression")).all()
    assert [tuple(r) for r in rows] == [(message["customer_id"], "*")]


def test_bad_webhooks_are_refused_with_a_reason_and_store_nothing(served: Served) -> None:
    message = sent(served, "winback")
    url = f"{served.url}/webhooks/events"
    good = {"id": "evt-9", "type": "bounce", "message": str(message["ref"])}
    body, signature = _generic(served, good)
    tampered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    old_body, old_signature = _generic(served, good, at=time.time() - 3600)
    unknown_body, unknown_signature = _generic(served, {"id": "e", "type": "exploded"})
    cases = {
        "no signature": (body, {}, 401, b"missing X-Campaign-Signature header"),
        "bad signature": (body, {"X-Campaign-Signature": tampered}, 401, b"bad signature"),
        "replayed late": (
            old_body,
            {"X-Campaign-Signature": old_signature},
            400,
            b"a replayed or delayed request",
        ),
        "unknown type": (
            unknown_body,
            {"X-Campaign-Signature": unknown_signature},
            400,
            b"event #1: unknown type 'exploded'",
        ),
    }
    for name, (data, headers, status, reason) in cases.items():
        answer = http(url, data=data, headers=headers)
        assert answer.status == status, name
        assert reason in answer.body, (name, answer.body)
    assert events(served.engine) == []
    with served.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM suppression")).scalar_one() == 0


def test_a_mailgun_hard_bounce_is_verified_and_suppresses(served: Served) -> None:
    message = sent(served, "winback")
    stamp, token = str(int(time.time())), "a" * 50
    payload = {
        "signature": {
            "timestamp": stamp,
            "token": token,
            "signature": sign_mailgun(MAILGUN_KEY.encode(), stamp, token),
        },
        "event-data": {
            "id": "mg-1",
            "event": "failed",
            "severity": "permanent",
            "timestamp": time.time(),
            "recipient": "someone@example.com",
            "message": {"headers": {"message-id": f"{message['ref']}@shop.example"}},
            "delivery-status": {"description": "550 mailbox does not exist"},
        },
    }
    url = f"{served.url}/webhooks/mailgun"
    forged = json.loads(json.dumps(payload))
    forged["signature"]["signature"] = "0" * 64
    assert http(url, data=json.dumps(forged).encode()).status == 401
    opened = json.loads(json.dumps(payload))
    opened["event-data"]["event"] = "opened"
    assert http(url, data=json.dumps(opened).encode()).status == 406
    assert events(served.engine) == []

    answer = http(url, data=json.dumps(payload).encode())

    assert answer.status == 200
    with served.engine.connect() as connection:
        reason = connection.execute(
            text("SELECT reason FROM suppression WHERE customer_id = :c"),
            {"c": message["customer_id"]},
        ).scalar_one()
    assert reason == "bounced: hard: 550 mailbox does not exist"


def test_huge_headers_and_bodies_are_refused(served: Served) -> None:
    answer = http(f"{served.url}/health", headers={"X-Big": "x" * 70_000})
    assert 400 <= answer.status < 500
    big = http(f"{served.url}/webhooks/events", data=b"x" * 1_100_000)
    assert big.status == 413
    assert http(f"{served.url}/health").status == 200
    assert events(served.engine) == []


def test_campaign_listen_serves_until_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    port = free()
    tracking_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", port)
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "listen",
            "--http",
            f"127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert r.read() == b"ok\n"
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "campaign listen did not start"
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn finishes in-flight requests, then exits by the signal it caught.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
        server.stdout.close()  # type: ignore[union-attr]


def test_campaign_listen_refuses_a_bad_address_and_a_missing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TEST_TRACKING_SECRET", raising=False)
    tracking_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 8080)
    bad = CliRunner().invoke(cli, ["listen", "--http", "localhost"])
    assert bad.exit_code == 2
    assert "'localhost' is not HOST:PORT, such as 127.0.0.1:8080" in bad.output
    missing = CliRunner().invoke(cli, ["listen"])
    assert missing.exit_code == 1
    assert missing.output.startswith("Error: tracking: the signing secret is missing")


def test_the_shop_s_posted_events_fire_an_event_trigger_once(served: Served) -> None:
    from tests.engagement_kit import EVENTS_KEY

    quiet = read_frame(
        served.engine,
        "SELECT customer_id FROM message GROUP BY customer_id "
        "HAVING COUNT(*) = 1 AND MAX(campaign) = 'newsletter' ORDER BY customer_id LIMIT 1",
    )
    customer = str(quiet["customer_id"].iloc[0])
    later = AT + timedelta(days=2)
    event = {
        "id": "shop-1",
        "customer_id": customer,
        "event": "cart_abandoned",
        "occurred_at": (later - timedelta(hours=1)).isoformat() + "Z",
    }
    url = f"{served.url}/events"
    key = {"Authorization": f"Bearer {EVENTS_KEY}"}
    body = json.dumps({"events": [event]}).encode()
    bad = json.dumps({"events": [event, {**event, "id": "shop-2", "event": "Cart!"}]}).encode()

    assert http(url, data=body).status == 401
    assert http(url, data=body, headers={"Authorization": "Bearer wrong"}).status == 401
    refused = http(url, data=bad, headers=key)
    assert refused.status == 400
    assert refused.body == b"event #2: event 'Cart!' must be lowercase letters, digits and '_'\n"
    assert http(url, data=body, headers=key).body == b"stored 1, repeats 0\n"
    assert http(url, data=body, headers=key).body == b"stored 0, repeats 1\n"

    run_campaigns(served.config, at=later)

    reminders = read_frame(
        served.engine,
        "SELECT customer_id FROM message WHERE campaign = 'cart-reminder' AND customer_id = :c",
        params={"c": customer},
    )
    assert len(reminders) == 1


def test_write_behind_clicks_are_answered_at_once_and_all_stored_on_a_graceful_stop(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tracking.write_behind_ms: clicks are stored in batches by a thread; stopping the server
    (uvicorn's graceful shutdown, as on SIGTERM) stores what is still pending."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    port = free()
    # A long window: nothing is stored while the server runs, so the stop must store it all.
    config = tracking_config(tmp_path, store_url, port, "write_behind_ms = 1000\n")
    run_campaigns(config, at=AT)
    with serving(config, port) as server:
        messages = read_frame(
            server.engine,
            "SELECT id, body_text, links FROM message WHERE campaign = 'winback' "
            "AND status = 'sent' ORDER BY id LIMIT 20",
        )
        answered = 0
        for body in [*messages["body_text"], messages["body_text"].iloc[0]]:
            link = TRACKED_URL.search(str(body))
            assert link is not None
            answer = http(link.group(0), headers={"User-Agent": "Mozilla/5.0 Firefox/130"})
            assert answer.status == 302
            assert answer.headers["location"].startswith("https://beanandleaf.example/")
            answered += 1
        bad = http(f"{server.url}/c/7/{'A' * 43}")
        assert bad.status == 404
        pending = len(events(server.engine))
    assert pending < answered  # the redirects did not wait for the store
    # The server has stopped and its engine was disposed: read with one of our own.
    engine = open_store(config.store.url, config.root)
    try:
        stored = events(engine)
    finally:
        engine.dispose()
    assert len(stored) == 20
    assert sum(1 + int(e["repeats"]) for e in stored) == answered == 21
    assert {int(e["message_id"]) for e in stored} == set(messages["id"].astype(int))
