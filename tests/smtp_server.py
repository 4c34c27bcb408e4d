"""Real SMTP servers on localhost for the delivery tests (aiosmtpd in a thread).

``MailServer`` records every accepted message. It can refuse recipients for good (local part
``bounce*`` -> 550) or for a while (``later*`` -> 451 the first ``defer`` times), and drop the
connection without a reply on every ``drop_every``-th message, like a crashing server, or
(``drop_after_every``) after *accepting* every n-th message, at the next command: the client
holds a 250 for it and finds the connection gone when it starts the next message.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailServer:
    """An aiosmtpd handler that records what it accepts and misbehaves on request."""

    def __init__(self, defer: int = 1, drop_every: int = 0, drop_after_every: int = 0) -> None:
        self.messages: list[Message] = []
        self.defer = defer
        self.drop_every = drop_every
        self.drop_after_every = drop_after_every
        self.connections = 0
        self._deferred: dict[str, int] = {}
        self._data = 0
        self._lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self._lock:
            self.connections += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        local = address.split("@", 1)[0]
        if local.startswith("bounce"):
            return "550 5.1.1 No such user here"
        if local.startswith("later"):
            with self._lock:
                seen = self._deferred.get(address, 0)
                self._deferred[address] = seen + 1
            if seen < self.defer:
                return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self._data += 1
            drop = self.drop_every and self._data % self.drop_every == 0
        if drop:
            server.transport.close()
            return "421 closing"
        message = message_from_bytes(
            envelope.original_content or envelope.content, policy=default_policy
        )
        with self._lock:
            self.messages.append(message)
            accepted = len(self.messages)
        if self.drop_after_every and accepted % self.drop_after_every == 0:
            session.drop_at_next_command = True
        return "250 Message accepted for delivery"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if getattr(session, "drop_at_next_command", False):
            session.drop_at_next_command = False
            server.transport.close()
            return "421 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    def message_ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (openssl); return (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class _Login:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(
    handler: MailServer,
    *,
    starttls: tuple[Path, Path] | None = None,
    implicit_tls: tuple[Path, Path] | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[int]:
    """Serve ``handler`` on a free localhost port for the block; yield the port."""
    kwargs: dict[str, Any] = {}
    if starttls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*starttls)
        kwargs.update(tls_context=context, require_starttls=True)
    if implicit_tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*implicit_tls)
        kwargs.update(ssl_context=context)
    if login is not None:
        kwargs.update(authenticator=_Login(*login), auth_required=True)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
