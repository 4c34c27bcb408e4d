"""Provider events in: the generic JSON shape and Mailgun's, each verified by its signature.

Generic shape (``POST /webhooks/events``), signed like this::

    X-Campaign-Signature: t=1764690000,v1=<hex HMAC-SHA256(secret, "1764690000." + body)>

    {"events": [{"id": "evt-1", "type": "bounce", "message": "<Message-ID or reference>",
                 "occurred_at": "2026-11-23T12:00:00Z", "bounce": "hard", "reason": "550 ..."}]}

``type`` is ``delivery``, ``bounce`` or ``complaint``; ``message`` is the message's Message-ID
(``<digest@domain>``, as our SMTP channel sets it) or its bare reference; ``recipient`` may
stand in for it (the newest message sent to that address). ``bounce`` is ``hard`` (default) or
``soft``; only a hard bounce suppresses. A body is one event object or ``{"events": [...]}``.

Mailgun (``POST /webhooks/mailgun``): the webhook body Mailgun posts, verified with the
webhook signing key (HMAC-SHA256 of timestamp and token); events ``delivered``, ``failed``
(``severity`` permanent: a hard bounce) and ``complained``. Others are answered 406, which tells
Mailgun not to retry.

Either way a signature older than ``webhook_tolerance_seconds`` is refused (a replay), and an
event whose id was stored before is counted as a repeat, not stored again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Event types the generic webhook takes.
GENERIC_TYPES = ("delivery", "bounce", "complaint")
#: Mailgun's event names and ours.
MAILGUN_TYPES = {"delivered": "delivery", "failed": "bounce", "complained": "complaint"}
#: At most this many events per request.
MAX_EVENTS = 1000


class WebhookRefused(Exception):
    """A webhook request that is refused: ``status`` (4xx) and a message saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ProviderEvent:
    """One validated provider event, not yet tied to a message."""

    id: str
    kind: str  # delivery, bounce, complaint
    occurred_at: datetime
    message: str | None  # a reference (32 hex digits) or None
    recipient: str | None
    hard: bool
    reason: str | None


def _ref_of(value: str) -> str | None:
    """A message reference from a Message-ID (``<digest@domain>``) or a bare reference."""
    local = value.strip().strip("<>").split("@", 1)[0].lower()
    if len(local) == 32 and all(c in "0123456789abcdef" for c in local):
        return local
    return None


def _when(value: Any, where: str) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise WebhookRefused(400, f"{where}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _fresh(timestamp: str, tolerance: float, now: float) -> None:
    try:
        sent = float(timestamp)
    except ValueError:
        raise WebhookRefused(
            400, f"signature timestamp {timestamp[:40]!r} is not a number"
        ) from None
    if abs(now - sent) > tolerance:
        raise WebhookRefused(
            400,
            f"signature timestamp is {abs(now - sent):.0f} s away from now, more than "
            f"{tolerance:.0f} s: a replayed or delayed request",
        )


def verify_generic(
    header: str | None, body: bytes, secret: bytes, tolerance: float, now: float
) -> None:
    """Check ``X-Campaign-Signature`` (``t=...,v1=...``); raise :class:`WebhookRefused` if bad."""
    if not header:
        raise WebhookRefused(401, "missing X-Campaign-Signature header")
    fields = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in fields or "v1" not in fields:
        raise WebhookRefused(401, "X-Campaign-Signature must be t=TIMESTAMP,v1=HEX")
    expected = hmac.new(secret, fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["v1"].strip().lower()):
        raise WebhookRefused(401, "bad signature")
    _fresh(fields["t"], tolerance, now)


def sign_generic(body: bytes, secret: bytes, timestamp: int) -> str:
    """The ``X-Campaign-Signature`` value for a body (for senders and tests)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def read_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WebhookRefused(400, f"body is not JSON: {exc}") from None


def parse_generic(body: bytes) -> list[ProviderEvent]:
    """The events of a generic webhook body, all validated; the first bad one is refused (400)."""
    data = read_json(body)
    items = data.get("events") if isinstance(data, dict) and "events" in data else [data]
    if not isinstance(items, list) or not items:
        raise WebhookRefused(400, "events must be a non-empty list of objects")
    if len(items) > MAX_EVENTS:
        raise WebhookRefused(413, f"{len(items)} events in one request, at most {MAX_EVENTS}")
    events = []
    for number, item in enumerate(items, start=1):
        where = f"event #{number}"
        if not isinstance(item, dict):
            raise WebhookRefused(400, f"{where}: not an object")
        kind = item.get("type")
        if kind not in GENERIC_TYPES:
            raise WebhookRefused(
                400, f"{where}: unknown type {kind!r}; expected one of {', '.join(GENERIC_TYPES)}"
            )
        event_id = item.get("id")
        if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
            raise WebhookRefused(400, f"{where}: id must be a non-empty string (at most 200)")
        message = item.get("message")
        recipient = item.get("recipient")
        if message is None and recipient is None:
            raise WebhookRefused(400, f"{where}: needs message (a Message-ID) or recipient")
        ref = None
        if message is not None:
            ref = _ref_of(str(message))
            if ref is None:
                raise WebhookRefused(400, f"{where}: message {str(message)[:80]!r} is not ours")
        bounce = item.get("bounce", "hard")
        if kind == "bounce" and bounce not in ("hard", "soft"):
            raise WebhookRefused(400, f"{where}: bounce must be 'hard' or 'soft', got {bounce!r}")
        events.append(
            ProviderEvent(
                id=event_id.strip(),
                kind=str(kind),
                occurred_at=_when(item.get("occurred_at"), f"{where}: occurred_at"),
                message=ref,
                recipient=str(recipient) if recipient is not None else None,
                hard=kind == "bounce" and bounce == "hard",
                reason=str(item["reason"])[:300] if item.get("reason") else None,
            )
        )
    return events


def sign_mailgun(key: bytes, timestamp: str, token: str) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of timestamp and token with the signing key."""
    return hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()


def parse_mailgun(body: bytes, key: bytes, tolerance: float, now: float) -> ProviderEvent:
    """Verify and read one Mailgun webhook body (``signature`` and ``event-data``)."""
    data = read_json(body)
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict) or not all(
        isinstance(signature.get(k), str) for k in ("timestamp", "token", "signature")
    ):
        raise WebhookRefused(401, "missing signature (timestamp, token, signature)")
    expected = sign_mailgun(key, signature["timestamp"], signature["token"])
    if not hmac.compare_digest(expected, signature["signature"].lower()):
        raise WebhookRefused(401, "bad signature")
    _fresh(signature["timestamp"], tolerance, now)
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise WebhookRefused(400, "missing event-data")
    name = event.get("event")
    if name not in MAILGUN_TYPES:
        raise WebhookRefused(
            406, f"event {name!r} is not taken; expected delivered, failed, complained"
        )
    headers = (event.get("message") or {}).get("headers") or {}
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    recipient = event.get("recipient")
    ref = _ref_of(str(message_id)) if message_id else None
    if ref is None and not recipient:
        raise WebhookRefused(400, "event-data names neither a message-id of ours nor a recipient")
    status = event.get("delivery-status") or {}
    reason = (
        status.get("description") or status.get("message") if isinstance(status, dict) else None
    )
    return ProviderEvent(
        id=str(event.get("id") or signature["token"]),
        kind=MAILGUN_TYPES[str(name)],
        occurred_at=_when(event.get("timestamp"), "event-data.timestamp"),
        message=ref,
        recipient=str(recipient) if recipient else None,
        hard=name == "failed" and event.get("severity", "permanent") == "permanent",
        reason=str(reason)[:300] if reason else None,
    )
