"""A demo workspace with tracking on, a real endpoint on a free port, and HTTP without redirects."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, text

from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.engagement.server import endpoint_for, free_port, running

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)
SECRET = "test-signing-key-0123456789abcdef"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"
MAILGUN_KEY = "key-mailgun-test-0123456789"
EVENTS_KEY = "shop-events-api-key-0123456789"
ENV = {
    "TEST_TRACKING_SECRET": SECRET,
    "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "TEST_MAILGUN_KEY": MAILGUN_KEY,
    "TEST_EVENTS_KEY": EVENTS_KEY,
}
TRACKED_URL = re.compile(r"http://127\.0\.0\.1:\d+/c/\d+/[A-Za-z0-9_-]{43}")


def tracking_config(tmp_path: Path, store_url: str, port: int, extra: str = "") -> Config:
    """The demo config at 300 customers with [tracking] on ``port``; winback and newsletter
    track their links, the newsletter is its own topic, vip-thanks is transactional."""
    text_ = (REPO / "config.toml").read_text()
    text_ = text_.replace("customers = 5000", "customers = 300")
    text_ = text_.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{store_url}"')
    text_ = text_.replace('templates = "templates"', f'templates = "{REPO / "templates"}"')
    # The demo tracks winback's and the newsletter's links already; its [tracking] section
    # (keys made in the state folder) gives way to one with keys from the environment.
    text_ = text_[: text_.index("\n[tracking]")]
    text_ = text_.replace(
        'template = "vip_thanks"\n', 'template = "vip_thanks"\ntopic = "transactional"\n'
    )
    text_ += (
        f'\n[tracking]\nbase_url = "http://127.0.0.1:{port}"\nsecret_env = "TEST_TRACKING_SECRET"\n'
        'webhook_secret_env = "TEST_WEBHOOK_SECRET"\nmailgun_signing_key_env = "TEST_MAILGUN_KEY"\n'
        'events_api_key_env = "TEST_EVENTS_KEY"\n'
        + (extra if "machine_click_seconds" in extra else "machine_click_seconds = 0\n" + extra)
    )
    path = tmp_path / "config.toml"
    path.write_text(text_)
    return load_config(path)


@dataclass
class Served:
    url: str
    config: Config
    engine: Engine


@contextmanager
def serving(config: Config, port: int) -> Iterator[Served]:
    app, engine = endpoint_for(config)
    try:
        with running(app, port) as server:
            yield Served(server.url, config, engine)
    finally:
        engine.dispose()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def http(
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> Answer:
    """One request, redirects not followed; any status is returned, not raised."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, dict(exc.headers.items()), exc.read())


def events(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM engagement_event ORDER BY id")).mappings()
        return [dict(r) for r in rows]


def free() -> int:
    return free_port()
