"""Small builders shared by the delivery tests: outbox rows and a config with given channels."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from campaigns.config.schema import Config

AT = datetime(2026, 11, 23, 12, 0)


def outbox_rows(recipients: list[str | None], channel: str, run_id: int = 1) -> pd.DataFrame:
    """Planned messages for ``recipients`` (customer ``c0``, ``c1``... of campaign winback)."""
    count = len(recipients)
    return pd.DataFrame(
        {
            "idempotency_key": [f"winback:c{i}:2026-11-23T10:00Z" for i in range(count)],
            "run_id": run_id,
            "campaign": "winback",
            "window": "2026-11-23T10:00Z",
            "customer_id": [f"c{i}" for i in range(count)],
            "segment_id": 4,
            "variant": None,
            "channel": channel,
            "recipient": recipients,
            "subject": [f"Hello {i}" for i in range(count)],
            "body_text": "We miss you.",
            "body_html": "<p>We miss you.</p>",
            "created_at": AT,
        }
    )


def config_with(root: Path, store_url: str, channels: dict[str, dict[str, Any]]) -> Config:
    """A validated config with the demo source, ``store_url`` and ``channels``."""
    return Config.model_validate(
        {
            "store": {"url": store_url},
            "source": {"type": "demo", "customers": 50},
            "settings": {"unsubscribe_base_url": "https://shop.example/unsubscribe"},
            "channels": channels,
            "root": root,
        }
    )


def batch_of(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as a channel receives them from a claim (with ids and attempts)."""
    return rows.assign(id=range(1, len(rows) + 1), attempts=1)


REPO = Path(__file__).resolve().parents[1]


def make_workspace(
    folder: Path,
    channels: str,
    campaigns: str,
    customers: int = 120,
    store_url: str | None = None,
) -> Path:
    """A workspace made by ``campaign init`` with its channels and campaigns replaced, and no caps
    or quiet hours; return its config.toml. The demo shop has ``customers`` customers and history
    up to 2026-11-20."""
    from campaigns.workspace import init_workspace

    init_workspace(folder)
    path = folder / "config.toml"
    text = path.read_text()
    text = text[: text.index("[channels.")]
    # The delivery tests count every planned message: no frequency caps, no quiet hours.
    text = "\n".join(
        line for line in text.splitlines() if not line.startswith(("caps =", "quiet_hours ="))
    )
    text += "\n"
    text = text.replace("customers = 5000", f"customers = {customers}\nend = 2026-11-20T00:00:00")
    if store_url is not None:
        text = text.replace('url = "sqlite:///.campaign/campaign.db"', f'url = "{store_url}"')
    path.write_text(text + channels + "\n" + campaigns)
    return path


def smtp_channel(port: int, **extra: Any) -> str:
    """A ``[channels.mail]`` table for a plain SMTP server on localhost."""
    lines = [
        "[channels.mail]",
        'type = "smtp"',
        'host = "127.0.0.1"',
        f"port = {port}",
        'security = "none"',
        'from = "Bean & Leaf <news@beanandleaf.example>"',
        *(f"{k} = {v!r}".replace("'", '"') for k, v in extra.items()),
    ]
    return "\n".join(lines) + "\n"


EVERYONE = """
[campaigns.newsletter]
segments = ["*"]
trigger = { type = "schedule", cron = "0 8 * * *", timezone = "UTC" }
channel = "mail"
template = "newsletter"
subject = "This week at Bean & Leaf"
"""
