"""The SMTP channel against real aiosmtpd servers on localhost: plain, STARTTLS with login, TLS,
refused recipients (5xx bounces and suppresses, 4xx is retried) and dropped connections."""

from __future__ import annotations

import email
import email.policy
import hashlib
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.delivery import make_channel, message_id
from campaigns.delivery.base import Fate, Result
from campaigns.delivery.drain import drain
from campaigns.errors import ConfigError, DeliveryError
from store import outbox
from store.bulk import read_frame
from tests.delivery_kit import AT, batch_of, config_with, outbox_rows
from tests.smtp_server import MailServer, free_port, make_certificate, smtp_server


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def smtp(port: int, **settings: Any) -> dict[str, Any]:
    return {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "Bean & Leaf <news@beanandleaf.example>",
        "backoff_seconds": 60,
        **settings,
    }


def mail_config(tmp_path: Path, port: int, store_url: str = "sqlite://", **settings: Any) -> Config:
    return config_with(tmp_path, store_url, {"mail": smtp(port, **settings)})


def test_a_message_has_both_parts_unsubscribe_headers_and_a_stable_message_id(
    tmp_path: Path,
) -> None:
    server = MailServer()
    with smtp_server(server) as port:
        config = mail_config(tmp_path, port, reply_to="hello@beanandleaf.example")
        channel = make_channel("mail", config, environ={})
        rows = outbox_rows(["ana@example.com", "bo@example.com"], "mail")
        rows.loc[1, "body_html"] = None
        # A campaign's rendered headers: added, Reply-To replaced, the channel's own kept.
        rows["headers"] = [
            '{"X-Campaign": "winback", "Reply-To": "care@beanandleaf.example", "To": "x@y"}',
            None,
        ]
        outcome = channel.send(batch_of(rows), "label")
        channel.close()
    destination = f"smtp://127.0.0.1:{port}"
    assert outcome.results == [Result.sent(destination)] * 2
    assert server.connections == 1  # one connection, reused
    first, second = server.messages
    assert first["From"] == "Bean & Leaf <news@beanandleaf.example>"
    assert first["To"] == "ana@example.com"
    assert first["Subject"] == "Hello 0"
    key = "winback:c0:2026-11-23T10:00Z"
    assert first["Message-ID"] == message_id(key, "beanandleaf.example")
    assert (
        first["Message-ID"]
        == f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@beanandleaf.example>"
    )
    assert first["X-Campaign-Idempotency-Key"] == key
    assert first["X-Campaign"] == "winback"
    assert first.get_all("Reply-To") == ["care@beanandleaf.example"]
    assert second.get_all("Reply-To") == ["hello@beanandleaf.example"]
    assert first["List-Unsubscribe"] == (
        "<https://shop.example/unsubscribe?customer=c0&campaign=winback>"
    )
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in first.walk() if not p.is_multipart()]
    assert parts == ["text/plain", "text/html"]
    assert second.get_content_type() == "text/plain"
    assert second.get_content() == "We miss you.\r\n"


def test_starttls_with_a_login_from_the_environment(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    server = MailServer()
    with smtp_server(server, starttls=certificate, login=("mailer", "s3cret")) as port:
        config = mail_config(
            tmp_path,
            port,
            security="starttls",
            username_env="SMTP_USER",
            password_env="SMTP_PASSWORD",
            ca_file=str(certificate[0]),
        )
        environ = {"SMTP_USER": "mailer", "SMTP_PASSWORD": "s3cret"}
        channel = make_channel("mail", config, environ=environ)
        sent = channel.send(batch_of(outbox_rows(["ana@example.com"], "mail")), "label")
        channel.close()
        wrong = make_channel("mail", config, environ={**environ, "SMTP_PASSWORD": "nope"})
        refused = wrong.send(batch_of(outbox_rows(["ana@example.com"], "mail")), "label")
        wrong.close()
    assert sent.results == [Result.sent(f"smtp://127.0.0.1:{port}")]
    assert len(server.messages) == 1
    # Refused credentials may be fixed (rotated) later: retried with backoff, then failed.
    assert refused.results == [
        Result.retry(
            f"cannot connect to smtp://127.0.0.1:{port}: "
            "(535, b'5.7.8 Authentication credentials invalid')"
        )
    ]


def test_implicit_tls(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    server = MailServer()
    with smtp_server(server, implicit_tls=certificate) as port:
        config = mail_config(tmp_path, port, security="tls", ca_file=str(certificate[0]))
        channel = make_channel("mail", config, environ={})
        outcome = channel.send(batch_of(outbox_rows(["ana@example.com"], "mail")), "label")
        channel.close()
    assert outcome.results[0].fate is Fate.SENT
    assert len(server.messages) == 1


def test_credentials_must_come_from_the_environment(tmp_path: Path) -> None:
    config = mail_config(tmp_path, 25, username_env="SMTP_USER", password_env="SMTP_PASSWORD")
    with pytest.raises(DeliveryError) as error:
        make_channel("mail", config, environ={"SMTP_USER": "mailer"})
    assert str(error.value) == (
        "channel 'mail': environment variable SMTP_PASSWORD is not set "
        "(password_env = 'SMTP_PASSWORD' in config.toml)"
    )
    path = tmp_path / "config.toml"
    path.write_text(
        '[source]\ntype = "demo"\n\n[channels.mail]\ntype = "smtp"\nhost = "mail.example"\n'
        'from = "news@example.com"\npassword = "hunter2"\n'
    )
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert str(bad.value) == (
        f"{path}:4: channels.mail: 'password' must not be written in config.toml; name an "
        "environment variable that holds it with password_env"
    )


@pytest.fixture
def mail_store(fresh_store: Engine, store_url: str) -> tuple[Engine, str]:
    return fresh_store, store_url


def _states(engine: Engine) -> list[tuple[str, str, int, str | None]]:
    frame = read_frame(
        engine, "SELECT customer_id, status, attempts, last_error FROM message ORDER BY id"
    )
    return [
        (str(c), str(s), int(a), e if isinstance(e, str) else None)
        for c, s, a, e in frame.itertuples(index=False)
    ]


def test_refused_recipients_bounce_and_are_suppressed_or_are_retried_later(
    tmp_path: Path, mail_store: tuple[Engine, str]
) -> None:
    engine, url = mail_store
    recipients = ["ana@example.com", "bounce@example.com", "later@example.com", None, "zoë@x.org"]
    outbox.enqueue(engine, outbox_rows(recipients, "mail"))
    server = MailServer(defer=1)
    start = AT
    with smtp_server(server) as port:
        config = mail_config(tmp_path, port, url)
        first = drain(engine, config, clock=lambda: start)
        assert (sum(first.sent.values()), sum(first.bounced.values())) == (1, 1)
        assert (sum(first.retrying.values()), sum(first.failed.values())) == (1, 2)
        assert _states(engine) == [
            ("c0", "sent", 1, None),
            ("c1", "bounced", 1, "550 5.1.1 No such user here"),
            ("c2", "queued", 1, "451 4.2.1 Mailbox busy, try again later"),
            ("c3", "failed", 1, "no email address"),
            ("c4", "failed", 1, "non-ASCII address 'zoë@x.org'"),
        ]
        with engine.connect() as connection:
            suppressed = connection.execute(
                text("SELECT customer_id, reason FROM suppression")
            ).all()
        assert [tuple(row) for row in suppressed] == [
            ("c1", "bounced: 550 5.1.1 No such user here")
        ]
        # The retry waits out its backoff (60 s after the first attempt), then goes through.
        early = drain(engine, config, clock=lambda: start + timedelta(seconds=59))
        assert early.handled == 0
        later = drain(engine, config, clock=lambda: start + timedelta(seconds=60))
        assert sum(later.sent.values()) == 1
    assert _states(engine)[2] == ("c2", "sent", 2, None)
    assert outbox.counts_by_status(engine) == {"sent": 2, "bounced": 1, "failed": 2}
    assert [m["To"] for m in server.messages] == ["ana@example.com", "later@example.com"]


def test_a_dropped_connection_is_retried_and_every_message_arrives(
    tmp_path: Path, mail_store: tuple[Engine, str]
) -> None:
    engine, url = mail_store
    rows = outbox_rows([f"user{i}@example.com" for i in range(10)], "mail")
    outbox.enqueue(engine, rows)
    server = MailServer(drop_every=4)
    with smtp_server(server) as port:
        config = mail_config(tmp_path, port, url, backoff_seconds=0)
        now = [datetime(2026, 11, 23, 12, 0)]
        first = drain(engine, config, clock=lambda: now[0])
        assert sum(first.retrying.values()) >= 2
        while outbox.counts_by_status(engine) != {"sent": 10}:
            now[0] += timedelta(seconds=2)  # retries wait for a later drain
            assert drain(engine, config, clock=lambda: now[0]).handled
    expected = sorted(message_id(k, "beanandleaf.example") for k in rows["idempotency_key"])
    assert sorted(server.message_ids()) == expected
    assert server.connections >= 3
    errors = read_frame(engine, "SELECT MAX(attempts) AS most FROM message")
    assert int(errors["most"].iloc[0]) >= 2


def test_a_connection_dropped_mid_batch_never_resends_what_the_server_accepted(
    tmp_path: Path, mail_store: tuple[Engine, str]
) -> None:
    # Issue 10: a dropped connection re-sent the messages of the batch in flight. Each message
    # is recorded as it is accepted, so only the one the drop interrupted is sent again.
    engine, url = mail_store
    rows = outbox_rows([f"user{i}@example.com" for i in range(12)], "mail")
    outbox.enqueue(engine, rows)
    server = MailServer(drop_after_every=3)
    with smtp_server(server) as port:
        config = mail_config(tmp_path, port, url, backoff_seconds=0, batch_size=12)
        now = [datetime(2026, 11, 23, 12, 0)]
        first = drain(engine, config, clock=lambda: now[0])
        # The drops came after messages 3, 6, 9 and 12: the next message of the batch found
        # the connection gone and waits for a retry; every accepted one is recorded sent.
        assert sum(first.retrying.values()) == 3
        assert outbox.counts_by_status(engine) == {"sent": 9, "queued": 3}
        while outbox.counts_by_status(engine) != {"sent": 12}:
            now[0] += timedelta(seconds=2)
            assert drain(engine, config, clock=lambda: now[0]).handled
    ids = server.message_ids()
    expected = sorted(message_id(k, "beanandleaf.example") for k in rows["idempotency_key"])
    assert sorted(ids) == expected  # each exactly once: no duplicate Message-ID
    assert len(ids) == len(set(ids)) == 12


def test_a_transient_error_gives_up_after_max_attempts_over_retry_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    from store.engine import opened_store

    now = [datetime(2026, 11, 23, 12, 0)]
    with opened_store(url) as engine, smtp_server(MailServer(defer=10)) as port:
        outbox.enqueue(engine, outbox_rows(["later@example.com"], "mail"))
        config = mail_config(tmp_path, port, url, backoff_seconds=0, max_attempts=2, retry_for="1h")
        # One attempt per drain, however short the backoff: the retry waits for the next drain.
        drain(engine, config, clock=lambda: now[0])
        assert _states(engine) == [("c0", "queued", 1, "451 4.2.1 Mailbox busy, try again later")]
        # Two attempts, but not yet an hour since the first failure: it goes on retrying.
        now[0] += timedelta(minutes=30)
        drain(engine, config, clock=lambda: now[0])
        assert _states(engine) == [("c0", "queued", 2, "451 4.2.1 Mailbox busy, try again later")]
        now[0] += timedelta(minutes=31)
        drain(engine, config, clock=lambda: now[0])
        assert _states(engine) == [
            (
                "c0",
                "failed",
                3,
                "451 4.2.1 Mailbox busy, try again later (gave up after 3 attempts)",
            )
        ]


def test_a_short_outage_loses_nothing_however_short_the_backoff(tmp_path: Path) -> None:
    # The case: backoff_seconds = 1 and a worker draining every few seconds used to
    # spend every attempt inside a 30-second outage. Now retries go on for retry_for.
    url = f"sqlite:///{tmp_path / 'store.db'}"
    from store.engine import opened_store

    now = [datetime(2026, 11, 23, 12, 0)]
    server = MailServer(defer=3)  # every address is refused with 451 three times: an outage
    with opened_store(url) as engine, smtp_server(server) as port:
        outbox.enqueue(engine, outbox_rows([f"later{i}@example.com" for i in range(10)], "mail"))
        config = mail_config(tmp_path, port, url, backoff_seconds=1, max_attempts=3)
        for _ in range(12):  # a drain every 5 seconds for a minute
            drain(engine, config, clock=lambda: now[0])
            now[0] += timedelta(seconds=5)
        assert outbox.counts_by_status(engine) == {"sent": 10}
    assert len(server.messages) == 10


def test_an_unreachable_server_is_retried(tmp_path: Path) -> None:
    port = free_port()
    channel = make_channel("mail", mail_config(tmp_path, port), environ={})
    outcome = channel.send(batch_of(outbox_rows(["a@example.com", "b@example.com"], "mail")), "x")
    error = f"cannot connect to smtp://127.0.0.1:{port}: [Errno 111] Connection refused"
    assert outcome.results == [Result.retry(error)] * 2


def test_parallel_connections_and_the_rate_limit(tmp_path: Path) -> None:
    server = MailServer()
    rows = batch_of(outbox_rows([f"user{i}@example.com" for i in range(20)], "mail"))
    with smtp_server(server) as port:
        channel = make_channel(
            "mail", mail_config(tmp_path, port, connections=4, rate_limit=40), environ={}
        )
        started = time.monotonic()
        outcome = channel.send(rows, "x")
        elapsed = time.monotonic() - started
        channel.close()
    assert all(r.fate is Fate.SENT for r in outcome.results)
    assert server.connections == 4
    assert len(server.messages) == 20
    # 20 messages at 40 per second, evenly spaced: the last leaves 19/40 s after the first.
    assert elapsed >= 19 / 40


def test_non_ascii_is_encoded_and_a_newline_cannot_inject_a_header(tmp_path: Path) -> None:
    config = mail_config(tmp_path, 25)
    config = config.model_copy(
        update={
            "channels": {
                "mail": config.channels["mail"].model_copy(
                    update={"from_address": "Bean & Léaf <news@beanandleaf.example>"}
                )
            }
        }
    )
    channel = make_channel("mail", config, environ={})
    row = batch_of(outbox_rows(["zoe@example.com"], "mail")).iloc[0].to_dict()
    row["subject"] = "Café crème for you\nBcc: everyone@example.com"
    row["body_text"] = "Grüße, " + "x" * 200 + "\nSecond line = fine.\n"
    raw = channel.build(row)  # type: ignore[attr-defined]
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Café crème for you Bcc: everyone@example.com"
    assert parsed["Bcc"] is None
    assert parsed["From"] == "Bean & Léaf <news@beanandleaf.example>"
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain")
    assert text.get_content() == "Grüße, " + "x" * 200 + "\r\nSecond line = fine.\r\n"
