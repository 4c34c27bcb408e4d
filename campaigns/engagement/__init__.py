"""Hearing back from messages: signed tokens, link rewriting, the HTTP endpoint (``campaign
listen``), engagement events and the suppressions they make, and the campaign report."""

from campaigns.engagement.links import Tracker
from campaigns.engagement.tokens import Signer, Token, load_keys, message_ref

__all__ = ["Signer", "Token", "Tracker", "load_keys", "message_ref"]
