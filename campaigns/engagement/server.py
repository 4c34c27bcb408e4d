"""Serving the endpoint with uvicorn: in the foreground (``campaign listen``), or in a thread
(tests, the demo's simulated people)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from campaigns.config.schema import Config
from campaigns.engagement.app import make_app
from campaigns.engagement.tokens import Signer, load_keys
from campaigns.errors import ConfigError
from store.engine import open_store

#: Largest request head (request line and headers) uvicorn accepts before answering 4xx.
MAX_HEAD_BYTES = 16 * 1024


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as host and port; ValueError says what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT, such as 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def endpoint_for(
    config: Config, clock: Callable[[], datetime] | None = None
) -> tuple[Starlette, Engine]:
    """The ASGI app over the config's store, and the engine (dispose it after); ``clock``: the
    time events are recorded at (default: the wall clock)."""
    if config.tracking is None:
        raise ConfigError(
            "config.toml has no [tracking] section; add one with base_url to serve the endpoint"
        )
    signer = Signer(load_keys(config.tracking, config.root))
    engine = open_store(config.store.url, config.root)
    if clock is None:
        return make_app(engine, signer, config), engine
    return make_app(engine, signer, config, clock=clock), engine


def _server(app: Starlette, host: str, port: int, log_level: str) -> uvicorn.Server:
    settings = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        # httptools and uvloop when installed (uvicorn[standard]), else h11 and asyncio; the
        # app itself refuses oversized headers (LimitHeaders) whichever parser runs.
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        # The app starts and stops its event writer (write_behind_ms) with the server.
        lifespan="on",
        server_header=False,
    )
    return uvicorn.Server(settings)


def serve(config: Config, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (uvicorn's own handlers)."""
    app, engine = endpoint_for(config)
    try:
        _server(app, host, port, "info").run()
    finally:
        engine.dispose()


def free_port() -> int:
    """A TCP port free on localhost now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Running:
    """An endpoint serving in a thread of this process."""

    url: str
    server: uvicorn.Server


@contextmanager
def running(app: Starlette, port: int | None = None) -> Iterator[Running]:
    """Serve ``app`` on 127.0.0.1 in a thread for the ``with`` block; stop it after."""
    port = port or free_port()
    server = _server(app, "127.0.0.1", port, "warning")
    thread = threading.Thread(target=server.run, name="campaign-listen", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the endpoint did not start on port {port}")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
