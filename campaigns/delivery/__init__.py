"""Delivery channels and the loop that drains the outbox through them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from campaigns.config.schema import Config
from campaigns.config.schema import FileChannel as FileSettings
from campaigns.config.schema import SmtpChannel as SmtpSettings
from campaigns.config.schema import WebhookChannel as WebhookSettings
from campaigns.delivery.base import Channel, Fate, Outcome, Result, message_id
from campaigns.delivery.export import FileChannel
from campaigns.delivery.smtp import SmtpChannel
from campaigns.delivery.webhook import WebhookChannel


def make_channel(name: str, config: Config, environ: Mapping[str, str] | None = None) -> Channel:
    """Build the channel called ``name`` from its config (secrets from ``environ``)."""
    settings = config.channels[name]
    env = os.environ if environ is None else environ
    if isinstance(settings, FileSettings):
        return FileChannel(
            name, config.path(Path(settings.directory)), settings.format, settings.batch_size
        )
    if isinstance(settings, SmtpSettings):
        ca_file = str(config.path(settings.ca_file)) if settings.ca_file else None
        return SmtpChannel(name, settings, config.settings.unsubscribe_base_url, env, ca_file)
    if isinstance(settings, WebhookSettings):
        return WebhookChannel(name, settings, env)
    raise NotImplementedError(f"channel type {settings.type!r}")  # pragma: no cover


__all__ = [
    "Channel",
    "Fate",
    "FileChannel",
    "Outcome",
    "Result",
    "SmtpChannel",
    "WebhookChannel",
    "make_channel",
    "message_id",
]
