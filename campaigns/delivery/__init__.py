"""Delivery channels and the loop that drains the outbox through them."""

from __future__ import annotations

from pathlib import Path

from campaigns.config.schema import Config
from campaigns.config.schema import FileChannel as FileChannelConfig
from campaigns.delivery.base import Channel, Outcome
from campaigns.delivery.export import FileChannel


def make_channel(name: str, config: Config) -> Channel:
    """Build the channel called ``name`` from its config."""
    settings = config.channels[name]
    if isinstance(settings, FileChannelConfig):
        return FileChannel(name, config.path(Path(settings.directory)), settings.format)
    raise NotImplementedError(f"channel type {settings.type!r}")  # pragma: no cover


__all__ = ["Channel", "FileChannel", "Outcome", "make_channel"]
