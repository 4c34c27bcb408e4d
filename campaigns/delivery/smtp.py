"""The SMTP channel: real email through smtplib, with connections reused across messages.

Each message has a text part, an HTML part when the template has one, a ``List-Unsubscribe``
header (with one-click ``List-Unsubscribe-Post``) and a Message-ID derived from its idempotency
key, so a copy re-sent after a crash is recognisable as the same message.

Replies are classified the way mail servers mean them: a 5xx refusal of the recipient is a bounce
(the customer is then suppressed), any other 5xx a permanent failure, and 4xx replies, timeouts and
dropped connections are transient (retried with backoff).
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import json
import re
import smtplib
import ssl
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from typing import Any

import pandas as pd

from campaigns.compose import unsubscribe_url
from campaigns.config.schema import SmtpChannel as SmtpSettings
from campaigns.delivery._rate import RateLimiter
from campaigns.delivery.base import Channel, OnResult, Outcome, Result, message_id
from campaigns.errors import DeliveryError

#: Header carrying the idempotency key verbatim, for receivers that deduplicate on it.
KEY_HEADER = "X-Campaign-Idempotency-Key"


class SmtpChannel(Channel):
    """Send each message as an email; ``settings.connections`` connections share a batch."""

    def __init__(
        self,
        name: str,
        settings: SmtpSettings,
        unsubscribe_base: str,
        environ: Mapping[str, str],
        ca_file: str | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.batch_size = settings.batch_size
        self.unsubscribe_base = unsubscribe_base
        self.username = _from_env(name, "username_env", settings.username_env, environ)
        self.password = _from_env(name, "password_env", settings.password_env, environ)
        if (self.username is None) != (self.password is None):
            raise DeliveryError(
                f"channel {name!r}: set both username_env and password_env, or neither"
            )
        self.ca_file = ca_file
        name, address = parseaddr(settings.from_address)
        self.envelope_from = address
        self.domain = address.rpartition("@")[2] or "localhost"
        self._from = formataddr((name, address), charset="utf-8")
        self.destination = f"smtp://{settings.host}:{settings.port}"
        self._limiter = RateLimiter(settings.rate_limit)
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    # -- sending ----------------------------------------------------------------------------------

    def send(self, batch: pd.DataFrame, label: str, on_result: OnResult | None = None) -> Outcome:
        rows: list[dict[str, Any]] = batch.to_dict("records")  # type: ignore[assignment]
        lanes = max(1, min(self.settings.connections, len(rows)))
        shares = [rows[i::lanes] for i in range(lanes)]
        told = on_result or _ignore
        if lanes == 1:
            done = [self._send_share(shares[0], told)]
        else:
            with ThreadPoolExecutor(lanes, thread_name_prefix=f"smtp-{self.name}") as pool:
                done = list(pool.map(lambda share: self._send_share(share, told), shares))
        results: dict[int, Result] = {}
        for share_results in done:
            results.update(share_results)
        ids = [int(row["id"]) for row in rows]
        return Outcome(ids=ids, results=[results[i] for i in ids])

    def _send_share(self, rows: list[dict[str, Any]], told: OnResult) -> dict[int, Result]:
        """Send ``rows`` in order over one connection, reconnecting after a drop.

        Each message's result is told as soon as the server has answered, before the next one.
        """
        results: dict[int, Result] = {}
        connection = self._checkout()
        for position, row in enumerate(rows):
            message_id_ = int(row["id"])
            recipient = row.get("recipient")
            if not isinstance(recipient, str) or "@" not in recipient:
                results[message_id_] = Result.failed("no email address")
                continue
            if not recipient.isascii():
                results[message_id_] = Result.failed(f"non-ASCII address {recipient!r}")
                continue
            if connection is None:
                try:
                    connection = self._connect()
                except (OSError, smtplib.SMTPException) as exc:
                    error = f"cannot connect to {self.destination}: {_describe(exc)}"
                    for rest in rows[position:]:
                        results[int(rest["id"])] = Result.retry(error)
                    return results
            self._limiter.wait()
            result, usable = self._send_one(connection, row, recipient)
            results[message_id_] = result
            told(message_id_, result)
            if not usable:
                _close_quietly(connection)
                connection = None
        if connection is not None:
            with self._lock:
                self._idle.append(connection)
        return results

    def _send_one(
        self, connection: smtplib.SMTP, row: dict[str, Any], recipient: str
    ) -> tuple[Result, bool]:
        """Send one message; return its result and whether the connection is still usable."""
        try:
            connection.sendmail(self.envelope_from, [recipient], self.build(row))
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            error = f"{code} {_text(reply)}"
            return (Result.bounced(error) if code >= 500 else Result.retry(error)), True
        except smtplib.SMTPResponseException as exc:
            # Sender refused, data refused, or another reply: 5xx is final, 4xx is worth a retry.
            error = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            usable = exc.smtp_code != 421  # 421: the server is closing the connection
            return (Result.failed(error) if exc.smtp_code >= 500 else Result.retry(error)), usable
        except (OSError, smtplib.SMTPException) as exc:
            # Dropped connection or timeout: the server may or may not have taken the message;
            # sending it again is safe because its Message-ID is the same.
            return Result.retry(f"connection lost: {_describe(exc)}"), False
        return Result.sent(self.destination), True

    def build(self, row: Mapping[str, Any]) -> bytes:
        """The email for one outbox row, as the bytes sent after DATA.

        Written directly rather than through :class:`email.message.EmailMessage`, whose header
        objects cost milliseconds per message: headers are ASCII or RFC 2047 encoded-words, both
        parts UTF-8 quoted-printable (7-bit safe, lines under 77 characters), lines end in CRLF.
        """
        key = str(row["idempotency_key"])
        extras = _extra_headers(row.get("headers"))
        # With [tracking] the message carries its signed one-click URL (campaigns.engagement).
        signed = next((v for k, v in extras.items() if k.lower() == "list-unsubscribe"), None)
        link = (
            signed.strip("<>")
            if signed
            else unsubscribe_url(
                self.unsubscribe_base, str(row["customer_id"]), str(row["campaign"])
            )
        )
        headers: dict[str, str] = {
            "From": self._from,
            "To": _header_value(str(row["recipient"])),
            "Subject": _encoded(str(row["subject"] or "")),
            "Date": formatdate(usegmt=True),
            "Message-ID": message_id(key, self.domain),
            "List-Unsubscribe": f"<{_header_value(link)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            KEY_HEADER: _header_value(key),
            "MIME-Version": "1.0",
        }
        if self.settings.reply_to:
            headers["Reply-To"] = _encoded(self.settings.reply_to)
        for name, value in extras.items():
            if name.lower() not in _OWN_HEADERS and _HEADER_NAME.match(name):
                headers.pop(next((h for h in headers if h.lower() == name.lower()), name), None)
                headers[name] = _encoded(value)
        text = _qp_part("plain", str(row["body_text"] or ""))
        html = row.get("body_html")
        if isinstance(html, str) and html:
            boundary = f"=_{hashlib.sha256(key.encode()).hexdigest()[:24]}"
            headers["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
            body = (
                f"--{boundary}\r\n".encode() + text + f"\r\n--{boundary}\r\n".encode()
                + _qp_part("html", html) + f"\r\n--{boundary}--\r\n".encode()
            )  # fmt: skip
        else:
            head, _, body = text.partition(b"\r\n\r\n")
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(": ")
                headers[name] = value
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return lines.encode("ascii") + b"\r\n" + body

    # -- connections ------------------------------------------------------------------------------

    def _checkout(self) -> smtplib.SMTP | None:
        """An idle connection that still answers, or None (the caller connects)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            try:
                if connection.noop()[0] == 250:
                    return connection
            except (OSError, smtplib.SMTPException):
                pass
            _close_quietly(connection)

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        context = ssl.create_default_context(cafile=self.ca_file)
        connection: smtplib.SMTP
        if settings.security == "tls":
            connection = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            if settings.security == "starttls":
                connection.ehlo()
                connection.starttls(context=context)
                connection.ehlo()
            if self.username is not None and self.password is not None:
                connection.login(self.username, self.password)
        except BaseException:
            _close_quietly(connection)
            raise
        return connection

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.quit()
            _close_quietly(connection)


_HEADER_NAME = re.compile(r"^[!-9;-~]+$")


def _header_value(value: str) -> str:
    """One line: a CR or LF in a value would start a new header (header injection)."""
    return " ".join(value.splitlines())


def _encoded(value: str) -> str:
    """A header value as is when it is short ASCII, else as RFC 2047 UTF-8 encoded-words."""
    value = _header_value(value)
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _qp_part(subtype: str, content: str) -> bytes:
    """A UTF-8 quoted-printable MIME part (its headers, a blank line, the body)."""
    normal = "\n".join(content.splitlines()) + "\n"
    body = binascii.b2a_qp(normal.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + body


#: Headers the channel sets itself; a campaign's ``headers`` cannot replace them.
_OWN_HEADERS = frozenset(
    h.lower()
    for h in (
        "From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
        "List-Unsubscribe-Post", KEY_HEADER, "Content-Type", "MIME-Version",
        "Content-Transfer-Encoding",
    )
)  # fmt: skip


def _extra_headers(value: object) -> dict[str, str]:
    """A message's rendered campaign headers (JSON text in the outbox), if any."""
    if isinstance(value, str) and value:
        decoded = json.loads(value)
        return {str(k): str(v) for k, v in decoded.items()} if isinstance(decoded, dict) else {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {}


def _from_env(
    channel: str, key: str, variable: str | None, environ: Mapping[str, str]
) -> str | None:
    if variable is None:
        return None
    value = environ.get(variable)
    if value is None:
        raise DeliveryError(
            f"channel {channel!r}: environment variable {variable} is not set "
            f"({key} = {variable!r} in config.toml)"
        )
    return value


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _ignore(message: int, result: Result) -> None:
    """The default ``on_result``: nobody is listening."""


def _close_quietly(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        connection.close()
