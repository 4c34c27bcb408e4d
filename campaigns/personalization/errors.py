"""Errors of the personalization models (the CLI turns them into one line)."""

from __future__ import annotations

from campaigns.errors import CampaignError


class PersonalizationError(CampaignError):
    """A model cannot be trained, evaluated or used with the data at hand."""
