"""Idempotency keys: what makes a message unique."""

from __future__ import annotations


def idempotency_key(campaign: str, customer_id: str, window: str) -> str:
    """The key of a message: campaign, customer and trigger window (``winback:C0042:...``)."""
    return f"{campaign}:{customer_id}:{window}"
