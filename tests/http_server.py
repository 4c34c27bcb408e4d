"""A real HTTP server on localhost for the webhook tests (http.server in a thread).

It records each request (path, headers, body) and answers from a script: ``plan`` maps the n-th
request (1-based) to a status, or to ``"stall"`` (no reply until the server stops, or for
``stall_seconds``); every other request gets 200.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hook:
    """What the server received and how it answers."""

    plan: dict[int, int | str] = field(default_factory=dict)
    stall_seconds: float = 5.0
    #: Seconds every request waits before its answer (a slow receiver).
    delay: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    #: Called with the request's number (1-based) before it is answered.
    on_request: Callable[[int], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(hook: Hook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if len(body) < length:
                return  # the sender died mid-request: a real receiver never processes it
            with hook.lock:
                hook.requests.append((dict(self.headers.items()), body))
                number = len(hook.requests)
                answer = hook.plan.get(number, 200)
            if hook.on_request is not None:
                hook.on_request(number)
            if hook.delay:
                hook.stop.wait(hook.delay)
            if answer == "stall":
                hook.stop.wait(hook.stall_seconds)
                return
            self.send_response(int(answer))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client gave up on a stalled request; nothing to report


@contextmanager
def http_server(hook: Hook) -> Iterator[str]:
    """Serve for the block; yield the URL to POST to."""
    server = _Server(("127.0.0.1", 0), _handler(hook))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        hook.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()
