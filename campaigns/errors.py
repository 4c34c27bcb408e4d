"""Typed errors raised by the library; the CLI turns them into one-line messages."""

from __future__ import annotations

from store.errors import CampaignError, DataError, RunLockedError, StoreError

__all__ = [
    "CampaignError",
    "ConfigError",
    "DataError",
    "DeliveryError",
    "RunLockedError",
    "StoreError",
    "TemplateCheckError",
    "UnknownSegment",
]


class ConfigError(CampaignError):
    """The configuration file is invalid; the message names the file, line and key path."""


class UnknownSegment(CampaignError):
    """A campaign names a segment that the current segmentation model does not have."""


class TemplateCheckError(CampaignError):
    """A template does not compile or reads a variable that the render context lacks."""


class DeliveryError(CampaignError):
    """A channel cannot deliver at all (a missing credential, an unusable setting)."""
