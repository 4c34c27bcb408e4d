"""Signed tokens for tracked URLs: what a link, pixel or unsubscribe URL carries.

A token is ``base64url(kind, message reference, link number, MAC)``: one letter for what it is
(``c`` click, ``o`` open, ``u`` unsubscribe), the message's 16-byte reference (the digest in its
Message-ID, a hash of the idempotency key: no customer id, no address), a 2-byte link number and
a 16-byte HMAC-SHA256 over the rest. 47 characters, no padding.

Keys rotate: :class:`Signer` signs with its first key and accepts a token signed by any of them,
so a new key goes first and the old ones stay until the messages that carry them are old.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from campaigns.config.schema import TrackingConfig
from campaigns.errors import ConfigError

#: What a token can stand for.
KINDS = {"c": "click", "o": "open", "u": "unsubscribe"}
#: Bytes: kind, reference, link number; then the MAC.
_PAYLOAD = 1 + 16 + 2
_MAC = 16
#: Length of a token as text (base64url of 35 bytes, unpadded).
TOKEN_LENGTH = 47
#: Domain separation: a MAC made for something else with the same key never verifies here.
_CONTEXT = b"campaign-tracking-token-v1:"
#: The shortest key accepted (characters); a short key can be guessed offline from one token.
MIN_KEY_LENGTH = 16


def message_ref(idempotency_key: str) -> str:
    """The reference of a message: 32 hex digits, the same as in its Message-ID."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Token:
    """What a verified token says."""

    kind: str
    ref: str
    link: int


class Signer:
    """Makes and checks tokens with HMAC-SHA256; signs with ``keys[0]``, verifies with any."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a signer needs at least one key")
        self._keys = tuple(keys)

    def token(self, kind: str, ref: str, link: int = 0) -> str:
        """The token for ``kind`` (``c``, ``o``, ``u``) of message ``ref``, link ``link``."""
        payload = kind.encode("ascii") + bytes.fromhex(ref) + link.to_bytes(2, "big")
        mac = hmac.digest(self._keys[0], _CONTEXT + payload, "sha256")[:_MAC]
        return base64.urlsafe_b64encode(payload + mac).decode("ascii").rstrip("=")

    def read(self, token: str) -> Token | None:
        """The token's content if it is well formed and signed by one of the keys, else None."""
        if len(token) != TOKEN_LENGTH:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=")
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _PAYLOAD + _MAC:
            return None
        payload, mac = raw[:_PAYLOAD], raw[_PAYLOAD:]
        for key in self._keys:
            if hmac.compare_digest(hmac.digest(key, _CONTEXT + payload, "sha256")[:_MAC], mac):
                kind = chr(payload[0])
                if kind not in KINDS:
                    return None
                return Token(kind, payload[1:17].hex(), int.from_bytes(payload[17:], "big"))
        return None


def load_keys(
    tracking: TrackingConfig, root: Path, environ: Mapping[str, str] | None = None
) -> list[bytes]:
    """The signing keys, newest first, from ``secret_file`` or the ``secret_env`` variable.

    Raises :class:`ConfigError` naming what is missing or wrong; the keys are never printed.
    """
    environ = os.environ if environ is None else environ
    if tracking.secret_file is not None:
        path = (
            tracking.secret_file
            if tracking.secret_file.is_absolute()
            else root / tracking.secret_file
        )
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"tracking.secret_file: {path} not found; write the signing key there "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            ) from None
        where = f"tracking.secret_file ({path})"
    elif tracking.secret_env is not None:
        text = environ.get(tracking.secret_env, "")
        if not text.strip():
            raise ConfigError(
                f"tracking: the signing secret is missing: set the environment variable "
                f"{tracking.secret_env} (tracking.secret_env), or name a file with "
                "tracking.secret_file"
            )
        where = f"the environment variable {tracking.secret_env}"
    else:
        raise ConfigError("tracking: set secret_env or secret_file; tracked links must be signed")
    keys = text.split()
    if not keys:
        raise ConfigError(f"tracking: {where} holds no key")
    for number, key in enumerate(keys, start=1):
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"tracking: key #{number} in {where} is too short: "
                f"{len(key)} characters, at least {MIN_KEY_LENGTH}"
            )
    return [k.encode("utf-8") for k in keys]
