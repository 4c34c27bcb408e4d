"""Hearing back from messages: signed tokens, link rewriting, the HTTP endpoint (``campaign
listen``), engagement events and the suppressions they make, and the campaign report."""

from campaigns.engagement.links import Tracker
from campaigns.engagement.tokens import Signer, load_keys, message_ref

__all__ = ["Signer", "Tracker", "load_keys", "message_ref"]
