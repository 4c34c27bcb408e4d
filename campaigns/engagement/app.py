"""The engagement endpoint: an ASGI application (Starlette) that ``campaign listen`` serves with
uvicorn. Stateless: each request verifies its token, records one event and answers.

    GET  /c/N/TOKEN        tracked link N: 302 to the link's target, recorded as a click
    GET  /o/TOKEN.gif      open pixel: a 1x1 GIF, recorded as an open (human or machine)
    GET  /u/TOKEN          the unsubscribe and preferences page
    POST /u/TOKEN          RFC 8058 one-click unsubscribe (body List-Unsubscribe=One-Click), or
                           the preferences page's form
    POST /webhooks/events  provider events, generic JSON shape (see webhooks.py)
    POST /webhooks/mailgun Mailgun's webhook
    POST /events           the shop's own events (API key), for ``event`` triggers
    GET  /health           200 "ok"

A bad, tampered, truncated or foreign token is a 404 and records nothing; every refusal is
logged (``campaign.listen``) with its reason.
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from campaigns.config.schema import TRANSACTIONAL, Config, TrackingConfig
from campaigns.engagement.recording import (
    EventWriter,
    SentMessages,
    click_event,
    find_message,
    record_click,
    record_open,
    record_provider_events,
    set_preferences,
    subscriptions,
    unsubscribe,
)
from campaigns.engagement.shop_events import parse_events, store_events
from campaigns.engagement.tokens import Signer, webhook_secret
from campaigns.engagement.webhooks import (
    ProviderEvent,
    WebhookRefused,
    parse_generic,
    parse_mailgun,
    verify_generic,
)
from store.events import ALL_TOPICS, SentMessage

log = logging.getLogger("campaign.listen")

#: The smallest transparent GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)
#: Largest request headers accepted (names and values together).
MAX_HEADER_BYTES = 16 * 1024
#: Largest webhook or form body accepted.
MAX_BODY = 1_000_000
_NO_STORE = {"Cache-Control": "no-store, private"}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _refuse(request: Request, status: int, reason: str) -> PlainTextResponse:
    log.warning("%s %s -> %d: %s", request.method, request.url.path[:120], status, reason)
    return PlainTextResponse(reason + "\n", status_code=status, headers=_NO_STORE)


class Endpoint:
    """The routes over one store, signer and settings (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        settings: TrackingConfig,
        topics: Sequence[str],
        environ: Mapping[str, str] | None = None,
        root: Path = Path(),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        #: The time of each event (the wall clock; a demo's simulated people bring their own).
        self.clock = clock
        self.inline = engine.dialect.name == "sqlite"
        #: Sent messages this process has read (a click reads its message once).
        self.messages = SentMessages(engine)
        #: With write_behind_ms, clicks are stored in batches (started by the app's lifespan).
        self.writer = (
            EventWriter(engine, settings.write_behind_ms / 1000)
            if settings.write_behind_ms
            else None
        )
        self.signer = signer
        self.settings = settings
        #: The topics a person can choose on the preferences page (never transactional).
        self.topics = sorted(t for t in set(topics) if t != TRANSACTIONAL)
        environ = os.environ if environ is None else environ
        self.webhook_secret = webhook_secret(settings, root, environ)
        self.mailgun_key = _secret(environ, settings.mailgun_signing_key_env)
        self.events_key = _secret(environ, settings.events_api_key_env)

    async def _run(self, handler: Callable[[Request], Response], request: Request) -> Response:
        # SQLite has one writer: a request's short transaction runs right here, as a thread
        # pool would only add hops and lock waits (twice the redirects per second). PostgreSQL
        # overlaps many transactions, so they wait on the database in worker threads.
        if self.inline:
            return handler(request)
        return await run_in_threadpool(handler, request)

    def _ref(self, request: Request) -> str | None:
        ref = self.signer.read(request.path_params["token"])
        if ref is None:
            log.warning("%s %s -> 404: bad token", request.method, request.url.path[:120])
        return ref

    async def click(self, request: Request) -> Response:
        if self.writer is None:
            return await self._run(self._click, request)
        # Write-behind: a message this process has read answers without the store.
        ref = self._ref(request)
        if ref is None:
            return PlainTextResponse("not found\n", status_code=404)
        message = self.messages.cached(ref)
        if message is None:
            message = (
                self.messages.get(ref)
                if self.inline
                else await run_in_threadpool(self.messages.get, ref)
            )
        event = click_event(
            message,
            request.path_params["link"],
            request.headers.get("user-agent"),
            self.clock(),
            self.settings.machine_click_seconds,
        )
        if event is None or message is None:
            return _refuse(request, 404, "not found")
        self.writer.add(event)
        return RedirectResponse(message.links[event.link or 0], status_code=302, headers=_NO_STORE)

    def _click(self, request: Request) -> Response:
        ref = self._ref(request)
        if ref is None:
            return PlainTextResponse("not found\n", status_code=404)
        target = record_click(
            self.engine,
            ref,
            request.path_params["link"],
            request.headers.get("user-agent"),
            self.clock(),
            self.settings.machine_click_seconds,
            self.messages,
        )
        if target is None:
            return _refuse(request, 404, "not found")
        return RedirectResponse(target, status_code=302, headers=_NO_STORE)

    async def pixel(self, request: Request) -> Response:
        return await self._run(self._pixel, request)

    def _pixel(self, request: Request) -> Response:
        ref = self._ref(request)
        if ref is None or not record_open(
            self.engine, ref, request.headers.get("user-agent"), self.clock()
        ):
            return PlainTextResponse("not found\n", status_code=404)
        return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)

    def _message(self, request: Request) -> SentMessage | None:
        ref = self._ref(request)
        return find_message(self.engine, ref) if ref is not None else None

    def page(self, request: Request) -> Response:
        message = self._message(request)
        if message is None:
            return PlainTextResponse("not found\n", status_code=404)
        stopped = subscriptions(self.engine, message.customer_id)
        return HTMLResponse(_page(message, self.topics, stopped), headers=_NO_STORE)

    async def unsubscribe(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _refuse(request, 413, "body too large")
        return await run_in_threadpool(self._unsubscribe, request, body)

    def _unsubscribe(self, request: Request, body: bytes) -> Response:
        message = self._message(request)
        if message is None:
            return PlainTextResponse("not found\n", status_code=404)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if _one_click(request, body, form):
            # RFC 8058: no page, no confirmation; the topic of the message.
            unsubscribe(self.engine, message, {message.topic}, self.clock(), "one-click")
            return PlainTextResponse("unsubscribed\n", headers=_NO_STORE)
        action = form.get("action", [""])[0]
        stop: set[str]
        keep: set[str]
        if action == "all":
            stop, keep = {ALL_TOPICS}, set()
        elif action == "topic":
            stop, keep = {message.topic}, set()
        elif action == "save":
            chosen = set(form.get("topic", []))
            unknown = chosen - set(self.topics)
            if unknown:
                return _refuse(request, 400, f"unknown topic {sorted(unknown)[0][:64]!r}")
            stop = set(self.topics) - chosen
            keep = chosen | {ALL_TOPICS}
        else:
            return _refuse(
                request, 400, "expected List-Unsubscribe=One-Click or action=all|topic|save"
            )
        set_preferences(self.engine, message, keep, stop, self.clock())
        stopped = subscriptions(self.engine, message.customer_id)
        return HTMLResponse(_done(message, self.topics, stopped), headers=_NO_STORE)

    async def generic_webhook(self, request: Request) -> Response:
        if self.webhook_secret is None:
            return _refuse(request, 404, "the generic webhook is off (tracking.webhook_secret_env)")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _refuse(request, 413, "body too large")
        try:
            verify_generic(
                request.headers.get("x-campaign-signature"),
                body,
                self.webhook_secret,
                self.settings.webhook_tolerance_seconds,
                time.time(),
            )
            events = parse_generic(body)
        except WebhookRefused as exc:
            return _refuse(request, exc.status, exc.message)
        return await run_in_threadpool(self._store, events, "webhook")

    async def mailgun_webhook(self, request: Request) -> Response:
        if self.mailgun_key is None:
            return _refuse(request, 404, "the Mailgun webhook is off (mailgun_signing_key_env)")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _refuse(request, 413, "body too large")
        try:
            event = parse_mailgun(
                body, self.mailgun_key, self.settings.webhook_tolerance_seconds, time.time()
            )
        except WebhookRefused as exc:
            return _refuse(request, exc.status, exc.message)
        return await run_in_threadpool(self._store, [event], "mailgun")

    async def shop_events(self, request: Request) -> Response:
        if self.events_key is None:
            return _refuse(request, 404, "POST /events is off (tracking.events_api_key_env)")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), b"Bearer " + self.events_key):
            return _refuse(request, 401, "missing or wrong API key (Authorization: Bearer KEY)")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _refuse(request, 413, "body too large")
        try:
            events = parse_events(body, self.clock())
        except WebhookRefused as exc:
            return _refuse(request, exc.status, exc.message)
        stored, repeats = await run_in_threadpool(store_events, self.engine, events)
        return PlainTextResponse(f"stored {stored}, repeats {repeats}\n", headers=_NO_STORE)

    def _store(self, events: list[ProviderEvent], source: str) -> Response:
        stored, repeats, unmatched = record_provider_events(self.engine, events, source)
        if unmatched:
            log.warning("%s: %d event(s) matched no message", source, unmatched)
        return PlainTextResponse(
            f"stored {stored}, repeats {repeats}, unmatched {unmatched}\n", headers=_NO_STORE
        )


def _secret(environ: Mapping[str, str], name: str | None) -> bytes | None:
    value = environ.get(name, "").strip() if name else ""
    return value.encode() if value else None


def _one_click(request: Request, body: bytes, form: Mapping[str, list[str]]) -> bool:
    if form.get("List-Unsubscribe") == ["One-Click"]:
        return True
    # Mailbox providers may post it as multipart/form-data (RFC 8058 allows either).
    kind = request.headers.get("content-type", "")
    return (
        kind.startswith("multipart/form-data")
        and b'name="List-Unsubscribe"' in body
        and (b"One-Click" in body)
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;"
    "color:#222}button{font-size:1em;padding:.4em 1em;margin:.3em 0}label{display:block}"
)


def _shell(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{_STYLE}</style></head>'
        f"<body>{body}</body></html>"
    )


def _choices(topics: Sequence[str], stopped: set[str]) -> str:
    rows = "".join(
        f'<label><input type="checkbox" name="topic" value="{html.escape(t)}"'
        f"{'' if t in stopped or ALL_TOPICS in stopped else ' checked'}> {html.escape(t)}</label>"
        for t in topics
    )
    return (
        '<form method="post"><input type="hidden" name="action" value="save">'
        f'<p>Send me:</p>{rows}<button type="submit">Save my choices</button></form>'
    )


def _page(message: SentMessage, topics: Sequence[str], stopped: set[str]) -> str:
    topic = html.escape(message.topic)
    return _shell(
        "Unsubscribe",
        f"<h1>Unsubscribe</h1><p>This message was about <strong>{topic}</strong>.</p>"
        '<form method="post"><input type="hidden" name="action" value="topic">'
        f'<button type="submit" id="unsubscribe">Unsubscribe from {topic}</button></form>'
        '<form method="post"><input type="hidden" name="action" value="all">'
        '<button type="submit" id="unsubscribe-all">Unsubscribe from all marketing</button>'
        f"</form><h2>Or choose what you get</h2>{_choices(topics, stopped)}"
        "<p><small>Messages about your orders and account still reach you.</small></p>",
    )


def _done(message: SentMessage, topics: Sequence[str], stopped: set[str]) -> str:
    if ALL_TOPICS in stopped:
        what = "You are unsubscribed from all marketing messages."
    elif stopped:
        what = "You are unsubscribed from: " + ", ".join(html.escape(t) for t in sorted(stopped))
    else:
        what = "You are subscribed to every topic."
    return _shell(
        "Your choices are saved",
        f'<h1>Your choices are saved</h1><p id="confirmation">{what}</p>'
        f"<h2>Change them</h2>{_choices(topics, stopped)}",
    )


def make_app(
    engine: Engine,
    signer: Signer,
    config: Config,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] = _now,
) -> Starlette:
    """The ASGI application of ``campaign listen`` over an open store (``clock``: the time of
    each event; the wall clock but in a demo's simulation)."""
    assert config.tracking is not None
    endpoint = Endpoint(
        engine,
        signer,
        config.tracking,
        [c.topic for c in config.campaigns.values()],
        environ,
        config.root,
        clock,
    )
    routes = [
        Route("/c/{link:int}/{token}", endpoint.click, methods=["GET", "HEAD"]),
        Route("/o/{token}.gif", endpoint.pixel, methods=["GET", "HEAD"]),
        Route("/u/{token}", endpoint.page, methods=["GET"]),
        Route("/u/{token}", endpoint.unsubscribe, methods=["POST"]),
        Route("/webhooks/events", endpoint.generic_webhook, methods=["POST"]),
        Route("/webhooks/mailgun", endpoint.mailgun_webhook, methods=["POST"]),
        Route("/events", endpoint.shop_events, methods=["POST"]),
        Route("/health", lambda _request: PlainTextResponse("ok\n"), methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Write-behind clicks: stored every write_behind_ms, and all of them on a graceful stop.
        if endpoint.writer is not None:
            endpoint.writer.start()
        try:
            yield
        finally:
            if endpoint.writer is not None:
                endpoint.writer.close()

    return Starlette(routes=routes, middleware=[Middleware(LimitHeaders)], lifespan=lifespan)


class LimitHeaders:
    """Refuse a request whose headers exceed :data:`MAX_HEADER_BYTES` (431), before routing.

    uvicorn bounds only a head that arrives in pieces; one sent whole is passed on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) for k, v in scope["headers"])
            if size > MAX_HEADER_BYTES:
                log.warning("%s -> 431: %d bytes of headers", scope["path"][:120], size)
                response = PlainTextResponse(
                    f"request headers too large: {size} bytes, at most {MAX_HEADER_BYTES}\n",
                    status_code=431,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
