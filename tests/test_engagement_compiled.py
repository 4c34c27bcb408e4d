"""Compiled links (links rewritten when a template is compiled, not by scanning each message):
the same output as scanning, and every link still tracked where the compiler cannot see it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from campaigns.config.schema import TrackingConfig
from campaigns.engagement.links import Tracker
from campaigns.engagement.tokens import Signer, message_ref
from templates import MessageTemplate, make_environment

REPO = Path(__file__).resolve().parents[1]
REF = message_ref("winback:C0042:2026-11-23")
KEY = b"new-key-0123456789abcdef"
BASE = "https://t.example.com"


def render_both(
    folder: Path, name: str, context: dict[str, Any], variant: str | None = None
) -> tuple[tuple[str, str | None, list[str]], tuple[str, str | None, list[str]]]:
    """(text, html, links) of template ``name`` compiled, and rendered plain then scanned."""
    tracker = Tracker(TrackingConfig(base_url=BASE, utm=True), Signer([KEY]))
    env = make_environment(folder)
    plain = MessageTemplate.load(env, name, "Hello")
    compiled = MessageTemplate.load(tracker.environment(env), name, "Hello", html_first=True)
    context = {**context, "unsubscribe_url": tracker.unsubscribe_url(REF)}
    tracker.begin(REF, "winback", variant)
    text, html = tracker.finish(compiled.render(context), plain, context)
    links = json.loads(tracker.message_links_json() or "[]")
    message = plain.render(context)
    old = tracker.rewrite(REF, message.text, message.html, "winback", variant)
    return (text, html, links), (old.text, old.html, old.links)


def write(folder: Path, **parts: str) -> Path:
    for name, source in parts.items():
        (folder / name.replace("_txt", ".txt.j2").replace("_html", ".html.j2")).write_text(
            source, encoding="utf-8"
        )
    return folder


def token() -> str:
    return Signer([KEY]).token(REF)


def test_a_static_links_rewrite_equals_the_scanning_output_for_the_winback_template() -> None:
    customer = {"first_name": "Ada", "recency": 120}
    new, old = render_both(REPO / "templates", "winback", {"customer": customer})
    assert new == old
    text, html, links = new
    assert links == [
        "https://beanandleaf.example/new-beans?utm_source=campaign&utm_medium=email"
        "&utm_campaign=winback"
    ]
    assert f"{BASE}/c/0/{token()}" in text
    assert f'<a href="{BASE}/c/0/{token()}">come and have a look</a>' in (html or "")
    assert f'<img src="{BASE}/o/{token()}.gif"' in (html or "")
    assert "beanandleaf.example" not in text + (html or "")


def test_a_link_a_variable_produces_is_tracked_in_both_parts(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        m_txt="Static https://shop.example/a\nYours: {{ url }}\nAfter {{ slug }}/x\n",
        m_html=(
            "<html><body><a href='https://shop.example/a'>a</a>"
            '<a href="{{ url }}">yours</a> <a href="https://shop.example/{{ slug }}">p</a>'
            "</body></html>"
        ),
    )
    context = {"url": "https://shop.example/p?id=7&k=1", "slug": "https://shop.example/s"}
    (text, html, links), _old = render_both(folder, "m", context)
    assert "shop.example" not in text + (html or "")
    assert sorted(links) == sorted(
        f"{u}{'&' if '?' in u else '?'}utm_source=campaign&utm_medium=email&utm_campaign=winback"
        for u in (
            "https://shop.example/a",
            "https://shop.example/p?id=7&k=1",
            "https://shop.example/https://shop.example/s",
            "https://shop.example/s/x",
        )
    )
    # Every stored target is a link of this message, and each link number is in it.
    for number in range(len(links)):
        assert f"{BASE}/c/{number}/{token()}" in text + (html or "")


def test_a_url_that_continues_in_a_variable_is_tracked_whole(tmp_path: Path) -> None:
    folder = write(tmp_path, m_txt="Buy https://shop.example/{{ slug }} now\n")
    (text, _html, links), (old_text, _, old_links) = render_both(folder, "m", {"slug": "beans"})
    assert (text, links) == (old_text, old_links)
    assert links[0].startswith("https://shop.example/beans?")


def test_opt_outs_still_hold_with_compiled_links(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        m_txt="Terms {{ 'https://shop.example/terms' | notrack }} and https://shop.example/\n",
        m_html=(
            '<html><body><a href="https://shop.example/terms" data-no-track>t</a> '
            "<a href=\"{{ 'https://shop.example/legal' | notrack }}\">l</a> "
            '<a href="https://shop.example/">s</a></body></html>'
        ),
    )
    new, old = render_both(folder, "m", {})
    assert new == old
    text, html, links = new
    assert "https://shop.example/terms" in text
    assert "https://shop.example/terms" in (html or "")
    assert "https://shop.example/legal" in (html or "")
    assert "\u2063" not in text + (html or "")
    assert links == [
        "https://shop.example/?utm_source=campaign&utm_medium=email&utm_campaign=winback"
    ]


@pytest.mark.parametrize(
    "html",
    [
        # captured and never output: the link must not be stored with the message
        '{% set unused %}<a href="https://shop.example/hidden">h</a>{% endset %}'
        '<a href="https://shop.example/shown">s</a>',
        # output twice through a macro
        '{% macro m() %}<a href="https://shop.example/m">m</a>{% endmacro %}{{ m() }}{{ m() }}',
        # changed by a filter block
        '{% filter upper %}<a href="https://shop.example/u">u</a>{% endfilter %}',
    ],
)
def test_templates_that_capture_output_store_only_links_of_the_message(
    tmp_path: Path, html: str
) -> None:
    folder = write(tmp_path, m_txt="Hi\n", m_html=f"<html><body>{html}</body></html>")
    new, old = render_both(folder, "m", {})
    assert new == old
    _text, out, links = new
    for number in range(len(links)):
        assert f"{BASE}/c/{number}/{token()}" in (out or "")
    assert "hidden" not in json.dumps(links)


def test_an_href_spelled_with_character_references_is_still_tracked(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        m_txt="Hi\n",
        m_html="<html><body>{{ link | safe }}</body></html>",
    )
    context = {"link": '<a href="https&#58;//shop.example/e">e</a>'}
    new, old = render_both(folder, "m", context)
    assert new == old
    assert new[2] == [
        "https://shop.example/e?utm_source=campaign&utm_medium=email&utm_campaign=winback"
    ]


def test_a_variant_gets_its_own_targets(tmp_path: Path) -> None:
    (text, _html, links), old = render_both(
        REPO / "templates",
        "winback",
        {"customer": {"first_name": "Ada", "recency": 3}},
        variant="story",
    )
    assert (text, links) == (old[0], old[2])
    assert links[0].endswith("&utm_content=story")


@pytest.mark.parametrize("key", [KEY, b"k" * 100])
def test_a_token_is_hmac_sha256_of_the_reference_as_before(key: bytes) -> None:
    payload = bytes.fromhex(REF)
    mac = hmac.new(key, b"campaign-tracking-token-v2:" + payload, hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(payload + mac[:16]).decode("ascii").rstrip("=")
    assert Signer([key]).token(REF) == expected
    assert Signer([b"other-key-0123456789", key]).read(expected) == REF
