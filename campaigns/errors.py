"""Typed errors raised by the library; the CLI turns them into one-line messages."""

from __future__ import annotations


class CampaignError(Exception):
    """Base class of every error a user can cause and fix (bad config, bad data, bad store)."""


class ConfigError(CampaignError):
    """The configuration file is invalid; the message names the file, line and key path."""


class DataError(CampaignError):
    """A data source cannot be read (missing file, missing column, unreadable format)."""


class StoreError(CampaignError):
    """The store cannot be used (wrong schema version, unreachable database)."""


class UnknownSegment(CampaignError):
    """A campaign names a segment that the current segmentation model does not have."""


class TemplateCheckError(CampaignError):
    """A template does not compile or reads a variable that the render context lacks."""


class RunLockedError(CampaignError):
    """Another run holds the store's run lock."""


class DeliveryError(CampaignError):
    """A channel cannot deliver at all (a missing credential, an unusable setting)."""
