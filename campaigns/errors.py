"""Typed errors raised by the library; the CLI turns them into one-line messages."""

from __future__ import annotations

from store.errors import CampaignError, DataError, RunLockedError, StoreError, TemplateCheckError

__all__ = [
    "CampaignError",
    "ConfigError",
    "DataError",
    "DeliveryError",
    "RenderBudgetError",
    "RenderFailuresError",
    "RunLockedError",
    "StoreError",
    "TemplateCheckError",
    "UnknownSegment",
]


class ConfigError(CampaignError):
    """The configuration file is invalid; the message names the file, line and key path."""


class UnknownSegment(CampaignError):
    """A campaign names a segment that the current segmentation model does not have."""


class DeliveryError(CampaignError):
    """A channel cannot deliver at all (a missing credential, an unusable setting)."""


class RenderBudgetError(CampaignError):
    """Rendering a run's messages took longer than ``[settings.limits] run_render_seconds``."""


class RenderFailuresError(CampaignError):
    """More than ``[settings.limits] max_render_failure_share`` of a campaign's messages failed
    to render: the template, not one customer's data, is broken; nothing of the run is queued."""
