"""Campaign reports from events that came through the real endpoint, the demo's simulated
people, and the loop in a real browser: click a link of an exported message, unsubscribe."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from campaigns.engagement.report import campaign_report
from campaigns.engagement.webhooks import sign_generic
from campaigns.run import run_campaigns
from cli.main import cli
from store.bulk import read_frame
from tests.browser import Browser
from tests.engagement_kit import (
    AT,
    ENV,
    REPO,
    TRACKED_URL,
    WEBHOOK_SECRET,
    Served,
    free,
    http,
    serving,
    tracking_config,
)

PERSON = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    port = free()
    config = tracking_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", port)
    run_campaigns(config, at=AT)
    with serving(config, port) as server:
        yield server


def newsletters(served: Served, count: int) -> list[dict[str, Any]]:
    frame = read_frame(
        served.engine,
        "SELECT id, ref, body_text, headers FROM message WHERE campaign = 'newsletter' "
        "AND status = 'sent' ORDER BY id LIMIT :n",
        params={"n": count},
    )
    return [r._asdict() for r in frame.itertuples(index=False)]


def test_the_report_counts_each_message_once_from_the_endpoint_s_events(
    served: Served,
) -> None:
    first, second, third = newsletters(served, 3)
    link = TRACKED_URL.search(first["body_text"])
    assert link is not None
    http(link.group(0), headers=PERSON)
    http(link.group(0), headers=PERSON)  # the same person again: one clicked message
    scanner = TRACKED_URL.search(second["body_text"])
    assert scanner is not None
    http(scanner.group(0), headers={"User-Agent": "Mimecast Safe Links Scanner"})
    unsubscribe = json.loads(third["headers"])["List-Unsubscribe"].strip("<>")
    http(unsubscribe, data=b"List-Unsubscribe=One-Click")
    body = json.dumps(
        {
            "events": [
                {"id": "c1", "type": "complaint", "message": second["ref"]},
                {"id": "b1", "type": "bounce", "message": third["ref"], "bounce": "hard"},
                {"id": "d1", "type": "delivery", "message": first["ref"]},
            ]
        }
    ).encode()
    signature = sign_generic(body, WEBHOOK_SECRET.encode(), int(time.time()))
    assert http(
        f"{served.url}/webhooks/events", data=body, headers={"X-Campaign-Signature": signature}
    ).body == (b"stored 3, repeats 0, unmatched 0\n")

    report = campaign_report(served.config, "newsletter")

    total = report.total
    sent = int(
        read_frame(
            served.engine,
            "SELECT COUNT(*) AS n FROM message WHERE campaign = 'newsletter' AND status = 'sent'",
        )["n"].iloc[0]
    )
    assert (total.sent, total.bounced, total.delivered) == (sent, 1, sent - 1)
    assert (total.clicked, total.opened, total.machine_opened) == (1, 1, 0)
    assert (total.unsubscribed, total.complained) == (1, 1)
    assert total.ctr == pytest.approx(1 / (sent - 1))
    assert total.click_to_open == 1.0
    assert report.confirmed_deliveries == 1
    assert sum(m.sent for _, m in report.by_segment) == sent
    assert [d for d, _ in report.by_day] == ["2026-11-23"]
    assert report.notes[-1].startswith("Opens are an unreliable signal")


def test_an_experiment_counts_tracked_clicks_of_people_only(served: Served) -> None:
    messages = read_frame(
        served.engine,
        "SELECT variant, body_text FROM message WHERE campaign = 'winback' AND status = 'sent' "
        "ORDER BY id",
    )
    clicked = messages.groupby("variant").head(2)
    for body in clicked["body_text"]:
        link = TRACKED_URL.search(body)
        assert link is not None
        http(link.group(0), headers=PERSON)
        http(link.group(0), headers={"User-Agent": "Barracuda link check"})
    result = CliRunner().invoke(cli, ["report", "winback", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    clicks = {v["variant"]: v["clicks"] for v in data["variants"]}
    assert clicks == {"control": 2, "discount": 2, "story": 2, "holdout": 0}
    assert data["campaign"]["total"]["clicked"] == 6


def test_the_demo_drives_people_through_the_endpoint(served: Served) -> None:
    result = CliRunner().invoke(cli, ["simulate", "newsletter", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Simulated people answered ")
    report = campaign_report(served.config, "newsletter")
    assert report.total.clicked > 0
    assert report.total.delivered == report.confirmed_deliveries
    assert report.total.unsubscribed + report.total.bounced > 0
    with served.engine.connect() as connection:
        suppressed = connection.execute(text("SELECT COUNT(*) FROM topic_suppression")).scalar()
    assert suppressed == report.total.unsubscribed + report.total.complained


def test_the_campaign_report_renders_in_a_browser(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    assert CliRunner().invoke(cli, ["simulate", "newsletter"]).exit_code == 0
    page = tmp_path / "newsletter.html"
    result = CliRunner().invoke(cli, ["report", "newsletter", "--html", str(page)])
    assert result.exit_code == 0, result.output
    shown = browser.open(page, screenshot=tmp_path / "newsletter.png")
    assert shown.ok, shown.problems()
    assert shown.title == "Campaign newsletter"
    assert shown.images == 2
    assert "Opens are an unreliable signal" in shown.text


class _Shop(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"<!doctype html><title>Shop</title><h1>Shop page {self.path}</h1>".encode()
        self.send_response(200 if self.path.startswith("/new-beans") else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def landing() -> Iterator[str]:
    """A shop page on a local HTTP server, for a link to land on."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_in_a_browser_a_link_lands_and_the_unsubscribe_page_suppresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser: Browser, landing: str
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    for source in (REPO / "templates").glob("*.j2"):
        text_ = source.read_text().replace("https://beanandleaf.example", landing)
        (templates / source.name).write_text(text_)
    port = free()
    config = tracking_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", port)
    config = config.model_copy(update={"templates": templates})
    run_campaigns(config, at=AT)
    with serving(config, port) as served:
        message = read_frame(
            served.engine,
            "SELECT id, customer_id, body_html, headers FROM message WHERE campaign = 'winback' "
            "AND status = 'sent' AND variant = 'control' ORDER BY id LIMIT 1",
        ).iloc[0]
        exported = tmp_path / "message.html"
        exported.write_text(str(message["body_html"]))
        with browser.page(exported) as page:
            page.click("text=come and have a look")
            page.wait_for_url(f"{landing}/new-beans", timeout=10_000)
            assert page.inner_text("h1") == "Shop page /new-beans"
        with browser.page(json.loads(message["headers"])["List-Unsubscribe"].strip("<>")) as page:
            page.click("#unsubscribe")
            page.wait_for_selector("#confirmation")
            assert page.inner_text("#confirmation") == "You are unsubscribed from: marketing"
        with served.engine.connect() as connection:
            kinds = connection.execute(
                text("SELECT kind FROM engagement_event ORDER BY id")
            ).scalars()
            assert "click" in list(kinds)
            stopped = connection.execute(
                text("SELECT topic FROM topic_suppression WHERE customer_id = :c"),
                {"c": message["customer_id"]},
            ).scalars()
            assert list(stopped) == ["marketing"]


def test_the_demo_people_click_after_the_scanners_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run and simulate back to back, as a user does: the simulated people wait until a click is
    # no longer taken for a link scanner's (machine_click_seconds after the last send).
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    config = tracking_config(
        tmp_path, f"sqlite:///{tmp_path / 'store.db'}", free(), "machine_click_seconds = 3\n"
    )
    run_campaigns(config, at=AT)
    result = CliRunner().invoke(cli, ["simulate", "newsletter", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "Waited " in result.output
    report = campaign_report(config, "newsletter")
    assert report.total.clicked > 0
