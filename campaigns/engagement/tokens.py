"""Signed tokens for tracked URLs: one per message, in every URL the message carries.

A token is ``base64url(reference, MAC)``: the message's 16-byte reference (the digest in its
Message-ID, a hash of the idempotency key: no customer id, no address) and a 16-byte
HMAC-SHA256 over it; 43 characters, no padding. The URL says what the request is:
``/c/N/TOKEN`` (link number N of the message), ``/o/TOKEN.gif`` (its open pixel), ``/u/TOKEN``
(its unsubscribe page). Only the token is signed: a link number can only pick one of the links
stored with that message, so a forged number reaches nothing the message did not contain.

Keys rotate: :class:`Signer` signs with its first key and accepts a token signed by any of them,
so a new key goes first and the old ones stay until the messages that carry them are old.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from campaigns.config.schema import TrackingConfig
from campaigns.errors import ConfigError

_REF = 16
_MAC = 16
#: Length of a token as text (base64url of 32 bytes, unpadded).
TOKEN_LENGTH = 43
#: Domain separation: a MAC made for something else with the same key never verifies here.
_CONTEXT = b"campaign-tracking-token-v2:"
#: SHA-256's block size (HMAC pads keys to it).
_BLOCK = 64
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_Hash = Any
#: The shortest key accepted (characters); a short key can be guessed offline from one token.
MIN_KEY_LENGTH = 16


def message_ref(idempotency_key: str) -> str:
    """The reference of a message: 32 hex digits, the same as in its Message-ID."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


class Signer:
    """Makes and checks tokens with HMAC-SHA256; signs with ``keys[0]``, verifies with any."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a signer needs at least one key")
        # Per key, the SHA-256 states of HMAC's inner hash (after the key and the context) and
        # outer hash (after the key): a token copies both (RFC 2104 written out with hashlib,
        # which costs a third less than copying an hmac object, per rendered message).
        self._states = [_keyed(key) for key in keys]

    def _mac(self, state: tuple[_Hash, _Hash], payload: bytes) -> bytes:
        inner, outer = state[0].copy(), state[1].copy()
        inner.update(payload)
        outer.update(inner.digest())
        mac: bytes = outer.digest()[:_MAC]
        return mac

    def token(self, ref: str) -> str:
        """The token of message ``ref`` (32 hex digits)."""
        payload = bytes.fromhex(ref)
        raw = payload + self._mac(self._states[0], payload)
        return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE)[:-1].decode("ascii")

    def read(self, token: str) -> str | None:
        """The message reference of a well-formed token signed by one of the keys, else None."""
        if len(token) != TOKEN_LENGTH:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=")
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _REF + _MAC:
            return None
        payload, mac = raw[:_REF], raw[_REF:]
        for state in self._states:
            if hmac.compare_digest(self._mac(state, payload), mac):
                return payload.hex()
        return None


def _keyed(key: bytes) -> tuple[_Hash, _Hash]:
    """HMAC-SHA256 keyed with ``key``, as its inner hash (the context fed in) and outer hash."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(_CONTEXT)
    return inner, hashlib.sha256(bytes(b ^ 0x5C for b in key))


def load_keys(
    tracking: TrackingConfig, root: Path, environ: Mapping[str, str] | None = None
) -> list[bytes]:
    """The signing keys, newest first, from ``secret_file`` or the ``secret_env`` variable.

    With ``create_secret = true`` a missing ``secret_file`` is made first (:func:`secret_text`).
    Raises :class:`ConfigError` naming what is missing or wrong; the keys are never printed.
    """
    environ = os.environ if environ is None else environ
    if tracking.secret_file is not None:
        path = tracking.secret_file
        text = secret_text(path, root, tracking.create_secret, "tracking.secret_file")
        where = f"tracking.secret_file ({path if path.is_absolute() else root / path})"
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


def webhook_secret(
    tracking: TrackingConfig, root: Path, environ: Mapping[str, str] | None = None
) -> bytes | None:
    """The secret that signs ``POST /webhooks/events``: from ``webhook_secret_file`` (made on
    first use with ``create_secret``), else the ``webhook_secret_env`` variable; None when
    neither is set (the generic webhook is off). A named file that is missing or empty is a
    :class:`ConfigError`."""
    if tracking.webhook_secret_file is not None:
        text = secret_text(
            tracking.webhook_secret_file,
            root,
            tracking.create_secret,
            "tracking.webhook_secret_file",
        ).strip()
        if not text:
            raise ConfigError(
                f"tracking.webhook_secret_file: {tracking.webhook_secret_file} is empty"
            )
        return text.encode()
    environ = os.environ if environ is None else environ
    value = (
        environ.get(tracking.webhook_secret_env, "").strip() if tracking.webhook_secret_env else ""
    )
    return value.encode() if value else None


def secret_text(path: Path, root: Path, create: bool, key: str) -> str:
    """The text of secret file ``path`` (relative to ``root``). With ``create``, a missing file
    is made first, holding a random key (32 bytes of :func:`secrets.token_bytes`, base64url),
    readable and writable by its owner only (0600): written whole to a private temporary file
    and linked into place, so a process that races this one reads one key or the other's,
    never half a file, and both then use the one that won."""
    path = path if path.is_absolute() else root / path
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key_text = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=") + b"\n"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(key_text)
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{key}: {path} not found; write the signing key there "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
            "or set tracking.create_secret = true to have one made on first use"
        ) from None
