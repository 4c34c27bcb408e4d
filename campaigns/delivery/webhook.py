"""The webhook channel: each message (or each batch) POSTed as JSON, signed with HMAC-SHA256.

Headers: ``Content-Type: application/json``; ``Idempotency-Key`` (one message per request) so the
receiver can drop a repeat; ``X-Campaign-Signature: sha256=HEX``, the HMAC-SHA256 of the exact
body bytes under the secret named by ``secret_env``. A 2xx reply is success; 408, 425, 429, 5xx,
timeouts and connection errors are transient (retried with backoff); any other 4xx is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import pandas as pd

from campaigns.config.schema import WebhookChannel as WebhookSettings
from campaigns.delivery._rate import RateLimiter
from campaigns.delivery.base import MESSAGE_FIELDS, Channel, OnResult, Outcome, Result
from campaigns.errors import DeliveryError

SIGNATURE_HEADER = "X-Campaign-Signature"

#: The message fields a webhook body carries.
FIELDS = MESSAGE_FIELDS

_TRANSIENT_STATUS = frozenset({408, 425, 429})


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    """POST messages to ``settings.url``, one request per message or per batch."""

    def __init__(self, name: str, settings: WebhookSettings, environ: Mapping[str, str]) -> None:
        self.name = name
        self.settings = settings
        self.batch_size = settings.batch_size
        self.secret: str | None = None
        if settings.secret_env is not None:
            self.secret = environ.get(settings.secret_env)
            if self.secret is None:
                raise DeliveryError(
                    f"channel {name!r}: environment variable {settings.secret_env} is not set "
                    f"(secret_env = {settings.secret_env!r} in config.toml)"
                )
        self._limiter = RateLimiter(settings.rate_limit)
        # No proxies from the environment: a webhook goes where config says, nowhere else.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def send(self, batch: pd.DataFrame, label: str, on_result: OnResult | None = None) -> Outcome:
        rows: list[dict[str, Any]] = batch.to_dict("records")  # type: ignore[assignment]
        records = [_record(row) for row in rows]
        ids = [int(i) for i in batch["id"]]
        if self.settings.mode == "batch":
            self._limiter.wait()
            result = self.post({"messages": records}, key=None)
            if on_result is not None:
                for message in ids:
                    on_result(message, result)
            return Outcome(ids=ids, results=[result] * len(ids))
        results = []
        for message, record in zip(ids, records, strict=True):
            self._limiter.wait()
            result = self.post(record, key=str(record["idempotency_key"]))
            results.append(result)
            if on_result is not None:
                on_result(message, result)
        return Outcome(ids=ids, results=results)

    def post(self, payload: Mapping[str, Any], key: str | None) -> Result:
        """POST one JSON body and classify the reply."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "campaign"}
        headers.update(self.settings.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        request = urllib.request.Request(self.settings.url, data=body, headers=headers)
        try:
            with self._opener.open(request, timeout=self.settings.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                error = f"HTTP {exc.code} {exc.reason}"
            if exc.code in _TRANSIENT_STATUS or exc.code >= 500:
                return Result.retry(error)
            return Result.failed(error)
        except TimeoutError:
            return Result.retry(f"no reply within {self.settings.timeout:g} s")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return Result.retry(f"no reply within {self.settings.timeout:g} s")
            return Result.retry(f"cannot reach {self.settings.url}: {exc.reason}")
        except OSError as exc:
            return Result.retry(f"connection lost: {exc}")
        return Result.sent(self.settings.url)


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name in FIELDS:
        value = row.get(name)
        if isinstance(value, float) and math.isnan(value):
            value = None
        elif name == "segment_id" and value is not None:
            value = int(value)
        elif name == "headers" and isinstance(value, str):
            value = json.loads(value)
        record[name] = value
    return record
