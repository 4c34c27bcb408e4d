"""Errors that the lowest layer raises and every layer above shares.

They live here, at the bottom, so that ``store`` and ``templates`` never import ``campaigns``;
``campaigns.errors`` re-exports them beside the errors of the upper layers.
"""

from __future__ import annotations


class CampaignError(Exception):
    """Base class of every error a user can cause and fix (bad config, bad data, bad store)."""


class DataError(CampaignError):
    """A data source cannot be read (missing file, missing column, unreadable format)."""


class StoreError(CampaignError):
    """The store cannot be used (unknown schema, pending migrations, unreachable database)."""


class RunLockedError(CampaignError):
    """Another run (or load) holds the store's run lock."""


class TemplateCheckError(CampaignError):
    """A template does not compile or reads a variable that the render context lacks."""
