"""Demo: simulated people answer a campaign's sent messages through the real endpoint.

The endpoint (the same app ``campaign listen`` serves) runs on a free local port for the
duration; every open, click, unsubscribe and provider event is a real HTTP request to it, so
the store, the suppressions and ``campaign report`` see exactly what they would in production.
Who does what is drawn from a seeded generator: customers who bought within the attribution
window after the message (``campaign experiment simulate`` writes such purchases for the demo
shop) click far more often than the others.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from campaigns.config.rules import parse_duration
from campaigns.config.schema import Config
from campaigns.engagement.report import DEFAULT_WINDOW
from campaigns.engagement.server import endpoint_for, running
from campaigns.engagement.tokens import webhook_secret
from campaigns.engagement.webhooks import sign_generic
from campaigns.errors import ConfigError, DataError
from store.bulk import insert_frame, read_frame, time_param
from store.sources.demo import simulate_conversions

#: Chances per delivered message (a person who bought clicks with ``CLICK_IF_BOUGHT``).
OPEN, MACHINE_OPEN, CLICK, CLICK_IF_BOUGHT = 0.30, 0.15, 0.04, 0.55
UNSUBSCRIBE, COMPLAINT, HARD_BOUNCE = 0.015, 0.003, 0.01
PERSON = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
_LINK = re.compile(r"https?://[^\s\"'<>]+/c/\d+/[A-Za-z0-9_-]{43}")
_PIXEL = re.compile(r"https?://[^\s\"'<>]+/o/[A-Za-z0-9_-]{43}\.gif")


@dataclass
class Simulated:
    """What the simulated people did, by request kind, and any request that failed."""

    messages: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1

    def summary(self) -> str:
        """The requests made, in a fixed order: ``52 opens, 9 machine opens, ...``."""
        order = ("opens", "machine opens", "clicks", "unsubscribes", "webhook posts")
        done = [f"{self.requests[k]:,} {k}" for k in order if self.requests.get(k)]
        return ", ".join(done) or "no requests"


def simulate_engagement(
    config: Config, campaign: str, seed: int = 0, at: datetime | None = None
) -> Simulated:
    """Drive simulated people through the endpoint for ``campaign``'s sent messages.

    ``campaign`` may name a journey: its people answer the messages of its send steps, each
    message's answer drawn from a generator seeded by the message (so simulating again, later,
    answers the new messages and repeats nothing), and its purchases are added for the new
    messages only. With ``at`` (a journey's demo over ``campaign run --at`` times), only the
    messages created by then are answered, and the endpoint records the events at ``at``."""
    journey = campaign in config.journeys
    settings = None if journey else config.require_campaign(campaign)
    if config.tracking is None:
        raise ConfigError(
            "simulating engagement needs a [tracking] section (and its secret); see "
            "docs/engagement.md"
        )
    if at is not None and not journey:
        raise ConfigError(
            f"--at applies to a journey's simulation; {campaign!r} is a campaign, whose people "
            "answer at the time the simulation runs"
        )
    tracking = config.tracking
    window = parse_duration(
        settings.experiment.attribution_window
        if settings is not None and settings.experiment
        else DEFAULT_WINDOW
    )
    app, engine = endpoint_for(config, None if at is None else (lambda: at))
    try:
        messages = read_frame(
            engine,
            "SELECT id, ref, customer_id, created_at, body_text, body_html, headers "
            "FROM message WHERE campaign = :c AND status = 'sent' AND created_at <= :at "
            "ORDER BY id",
            params={"c": campaign, "at": time_param(at or datetime.max)},
            datetime_columns=["created_at"],
        )
        if messages.empty:
            raise DataError(f"no sent messages of {campaign!r}: run `campaign run` first")
        result = Simulated(messages=len(messages))
        if journey:
            made = _journey_purchases(engine, campaign, messages, window, seed)
            if made is not None:
                result.notes.append(
                    f"Simulated {made:,} purchases by customers sent {campaign} (the demo shop's "
                    "response model, within 14 days of a message), for messages not simulated "
                    "before."
                )
        elif settings is not None and settings.experiment is None:
            # An experiment's purchases come from `campaign experiment simulate` (by variant).
            made = _simulate_purchases(engine, campaign, window, seed)
            if made is not None:
                result.notes.append(
                    f"Simulated {made:,} purchases by customers sent {campaign} (the demo shop's "
                    "response model, within the attribution window)."
                )
        bought = _buyers(engine, messages, window)
        webhook = webhook_secret(tracking, config.root)
        if not webhook:
            result.notes.append(
                f"No bounces, complaints or deliveries: set {tracking.webhook_secret_env} "
                "(or tracking.webhook_secret_file) to post them to the provider webhook."
            )
        # At a simulated time, no wait: a click is timed against the send on the wall clock.
        waited = (
            _wait_for_people(engine, campaign, tracking.machine_click_seconds)
            if at is None
            else 0.0
        )
        if waited:
            result.notes.append(
                f"Waited {waited:.0f} s after the last send: a click sooner than "
                f"machine_click_seconds ({tracking.machine_click_seconds:g} s) counts as a link "
                "scanner's, and these are people."
            )
        rng = np.random.default_rng(seed)
        with running(app) as server:
            local = server.url
            provider: list[dict[str, object]] = []
            for row in messages.itertuples(index=False):
                # A journey's message is answered the same whenever it is simulated.
                number = int(str(row.id))
                drawn = np.random.default_rng([seed, number]) if journey else rng
                _one(row, bool(row.id in bought), drawn, local, tracking.base_url, result, provider)
            if webhook and provider:
                for start in range(0, len(provider), 500):
                    body = json.dumps({"events": provider[start : start + 500]}).encode()
                    signature = sign_generic(body, webhook, int(time.time()))
                    _request(
                        f"{local}/webhooks/events",
                        result,
                        "webhook posts",
                        data=body,
                        headers={"X-Campaign-Signature": signature},
                    )
    finally:
        engine.dispose()
    return result


def _simulate_purchases(engine: Engine, campaign: str, window: timedelta, seed: int) -> int | None:
    """Demo shop only: the customers sent ``campaign`` buy by the shop's known response model
    (a plain message's rate for their latent group), once each at most, at a uniform time inside
    the attribution window after the message; return how many, or None when the customers are
    not the demo shop's. Simulating again replaces the previous simulation of the campaign."""
    sent = read_frame(
        engine,
        "SELECT m.customer_id, m.created_at, c.traits FROM message m "
        "JOIN customer c ON c.customer_id = m.customer_id "
        "WHERE m.campaign = :c AND m.status = 'sent' ORDER BY m.id",
        params={"c": campaign},
        datetime_columns=["created_at"],
        json_columns=["traits"],
    )
    groups = sent["traits"].map(lambda t: t.get("latent_group") if isinstance(t, dict) else None)
    if sent.empty or groups.isna().any():
        return None
    products = read_frame(engine, "SELECT product_id, price FROM product ORDER BY product_id")
    if products.empty:
        return None
    rng = np.random.default_rng([seed, 1])
    converted = simulate_conversions(
        pd.DataFrame({"latent_group": groups.to_numpy()}), "control", rng
    )
    count = int(converted.sum())
    delay = rng.random(count) * window.total_seconds()
    pick = rng.integers(0, len(products), count)
    prefix = f"SIM-campaign-{campaign}-"
    purchases = pd.DataFrame(
        {
            "invoice": [f"{prefix}{i + 1}" for i in range(count)],
            "customer_id": sent["customer_id"].to_numpy()[converted],
            "product_id": products["product_id"].to_numpy()[pick],
            "quantity": 1,
            "unit_price": products["price"].to_numpy()[pick],
            "invoiced_at": sent["created_at"].to_numpy()[converted]
            + pd.to_timedelta(delay.round(), unit="s").to_numpy(),
        }
    )
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM transaction_line WHERE invoice LIKE :p"), {"p": prefix + "%"}
        )
    return insert_frame(engine, "transaction_line", purchases)


def _journey_purchases(
    engine: Engine, journey: str, messages: pd.DataFrame, window: timedelta, seed: int
) -> int | None:
    """Demo shop only: a journey's customers buy by the shop's response model (a plain
    message's rate for their latent group), at most once per message, at a uniform time inside
    ``window`` after it; drawn per message from a generator seeded by it, and added only for
    messages that have no simulated purchase yet (a journey is simulated again between runs,
    and what a run saw stays). Returns how many, or None when the customers are not the demo
    shop's."""
    traits = read_frame(
        engine,
        "SELECT c.customer_id, c.traits FROM customer c WHERE c.customer_id IN "
        "(SELECT customer_id FROM message WHERE campaign = :c)",
        params={"c": journey},
        json_columns=["traits"],
    ).set_index("customer_id")["traits"]
    groups = traits.map(lambda t: t.get("latent_group") if isinstance(t, dict) else None)
    if groups.isna().any() or groups.empty:
        return None
    products = read_frame(engine, "SELECT product_id, price FROM product ORDER BY product_id")
    if products.empty:
        return None
    prefix = f"SIM-journey-{journey}-"
    done = set(
        read_frame(
            engine,
            "SELECT DISTINCT invoice FROM transaction_line WHERE invoice LIKE :p",
            params={"p": prefix + "%"},
        )["invoice"]
    )
    known: dict[str, Any] = {str(c): g for c, g in groups.items()}
    rows = []
    for number, customer, created in zip(
        messages["id"].tolist(),
        messages["customer_id"].astype(str).tolist(),
        messages["created_at"].tolist(),
        strict=True,
    ):
        invoice = f"{prefix}{number}"
        if invoice in done or customer not in known:
            continue
        rng = np.random.default_rng([seed, 1, int(number)])
        group = pd.DataFrame({"latent_group": [known[customer]]})
        if not bool(simulate_conversions(group, "control", rng)[0]):
            continue
        pick = int(rng.integers(0, len(products)))
        delay = round(float(rng.random()) * window.total_seconds())
        rows.append(
            {
                "invoice": invoice,
                "customer_id": customer,
                "product_id": products["product_id"].iloc[pick],
                "quantity": 1,
                "unit_price": products["price"].iloc[pick],
                "invoiced_at": pd.Timestamp(created) + pd.Timedelta(seconds=delay),
            }
        )
    if not rows:
        return 0
    return insert_frame(engine, "transaction_line", pd.DataFrame(rows))


def _wait_for_people(engine: object, campaign: str, soon: float) -> float:
    """Sleep until ``soon`` seconds have passed since the campaign's last send (the endpoint
    takes a click sooner than that for a link scanner's); return the seconds slept."""
    last = read_frame(
        engine,  # type: ignore[arg-type]
        "SELECT MAX(sent_at) AS last FROM message WHERE campaign = :c AND status = 'sent'",
        params={"c": campaign},
        datetime_columns=["last"],
    )["last"].iloc[0]
    if pd.isna(last):
        return 0.0
    now = datetime.now(UTC).replace(tzinfo=None)
    wait = float(soon - (now - last.to_pydatetime()).total_seconds())
    if wait <= 0:
        return 0.0
    time.sleep(wait)
    return wait


def _buyers(engine: object, messages: pd.DataFrame, window: timedelta) -> set[int]:
    orders = read_frame(
        engine,  # type: ignore[arg-type]
        "SELECT DISTINCT customer_id, invoiced_at FROM transaction_line "
        "WHERE invoiced_at >= :start AND invoiced_at < :stop",
        params={
            "start": time_param(messages["created_at"].min().to_pydatetime()),
            "stop": time_param((messages["created_at"].max() + window).to_pydatetime()),
        },
        datetime_columns=["invoiced_at"],
    )
    joined = orders.merge(messages[["id", "customer_id", "created_at"]], on="customer_id")
    inside = (joined["invoiced_at"] >= joined["created_at"]) & (
        joined["invoiced_at"] < joined["created_at"] + window
    )
    return {int(i) for i in joined.loc[inside, "id"]}


def _one(
    row: object,
    bought: bool,
    rng: np.random.Generator,
    local: str,
    base: str,
    result: Simulated,
    provider: list[dict[str, object]],
) -> None:
    ref = str(row.ref)  # type: ignore[attr-defined]
    text = str(row.body_text or "")  # type: ignore[attr-defined]
    html = str(row.body_html or "")  # type: ignore[attr-defined]
    headers = row.headers  # type: ignore[attr-defined]
    headers = json.loads(headers) if isinstance(headers, str) else dict(headers or {})
    event_id = f"sim-{ref}"
    if rng.random() < HARD_BOUNCE:
        provider.append({"id": f"{event_id}-b", "type": "bounce", "message": ref, "bounce": "hard"})
        return
    provider.append({"id": f"{event_id}-d", "type": "delivery", "message": ref})

    def here(url: str) -> str:
        return local + url[len(base) :] if url.startswith(base) else url

    pixel = _PIXEL.search(html)
    links = _LINK.findall(text) or _LINK.findall(html)
    clicks = links and rng.random() < (CLICK_IF_BOUGHT if bought else CLICK)
    if pixel and rng.random() < MACHINE_OPEN:
        _request(here(pixel.group(0)), result, "machine opens", agent=PROXY)
    if pixel and (clicks or rng.random() < OPEN):
        _request(here(pixel.group(0)), result, "opens", agent=PERSON)
    if clicks:
        link = links[int(rng.integers(0, len(links)))]
        _request(here(link), result, "clicks", agent=PERSON)
    unsubscribe = str(headers.get("List-Unsubscribe", "")).strip("<>")
    if unsubscribe and rng.random() < UNSUBSCRIBE:
        _request(
            here(unsubscribe),
            result,
            "unsubscribes",
            data=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    if rng.random() < COMPLAINT:
        provider.append({"id": f"{event_id}-c", "type": "complaint", "message": ref})


def _request(
    url: str,
    result: Simulated,
    kind: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    agent: str = PERSON,
) -> None:
    request = urllib.request.Request(
        url, data=data, headers={"User-Agent": agent, **(headers or {})}
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 302:
            result.failures.append(f"{kind}: {exc.code} {exc.read()[:100]!r}")
            return
    except OSError as exc:
        result.failures.append(f"{kind}: {exc}")
        return
    result.count(kind)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
