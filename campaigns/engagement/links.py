"""Link rewriting at render time: each message's links become signed tracked links.

In the HTML part every ``<a href="http...">`` is rewritten, unless the tag carries the attribute
``data-no-track``; in the text part every ``http://`` or ``https://`` URL is. A URL a template
passes through the ``notrack`` filter is left alone in both parts. The same URL in both parts
gets one link number. The targets (with UTM parameters when configured) are kept with the
message, and the endpoint redirects only to those: never an open redirect.

An open pixel goes before ``</body>`` of the HTML part. The message's unsubscribe URL is a signed
token too; ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058) point at it.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from campaigns.config.schema import Config, TrackingConfig
from campaigns.engagement.tokens import Signer, load_keys
from templates.filters import NOTRACK_MARK

#: At most this many links of one message are tracked (the link number has two bytes; a message
#: with more is a mistake, and its further links stay as they are).
MAX_LINKS = 200

_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_NO_TRACK = re.compile(r"\sdata-no-track\b", re.IGNORECASE)
#: Punctuation that ends a sentence rather than a URL in plain text.
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Tracked:
    """A message after rewriting: its parts, headers to add and the link targets in order."""

    text: str
    html: str | None
    headers: dict[str, str]
    links: list[str]


class Tracker:
    """Signs and rewrites the messages of one run (see the module docstring)."""

    def __init__(self, settings: TrackingConfig, signer: Signer) -> None:
        self.settings = settings
        self.signer = signer
        self.base = settings.base_url
        # The same few links recur in every message of a run: how to rewrite each anchor tag,
        # and each URL's target (entities decoded, UTM parameters added), are worked out once.
        self._anchors: dict[str, tuple[str, str, str] | None] = {}
        self._targets: dict[tuple[str, str, str | None], str] = {}
        self._links_json: dict[tuple[str, ...], str] = {}
        self._last: tuple[str, str] = ("", "")
        self._post = "List-Unsubscribe=One-Click"
        # URLs in text, but not our own (the unsubscribe URL), which need no callback.
        self._text_url = re.compile(
            rf"\u2063?(?!{re.escape(self.base)})https?://[^\s<>\"'\u2063]+\u2063?"
        )

    @classmethod
    def from_config(cls, config: Config) -> Tracker | None:
        """The run's tracker, or None without ``[tracking]``; a missing secret is a ConfigError."""
        if config.tracking is None:
            return None
        return cls(config.tracking, Signer(load_keys(config.tracking, config.root)))

    def _token(self, ref: str) -> str:
        if self._last[0] != ref:  # asked for twice or more per message
            self._last = (ref, self.signer.token(ref))
        return self._last[1]

    def unsubscribe_url(self, ref: str) -> str:
        """The signed unsubscribe URL of message ``ref`` (a page on GET, one-click on POST)."""
        return f"{self.base}/u/{self._token(ref)}"

    def headers(self, ref: str) -> dict[str, str]:
        """RFC 8058 one-click unsubscribe headers for message ``ref``."""
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url(ref)}>",
            "List-Unsubscribe-Post": self._post,
        }

    def headers_json(self, ref: str) -> str:
        """:meth:`headers` as the outbox keeps them (JSON), without json.dumps per message:
        the base URL was checked to be a plain http(s) URL and the token is base64url."""
        return (
            f'{{"List-Unsubscribe": "<{self.unsubscribe_url(ref)}>", '
            f'"List-Unsubscribe-Post": "{self._post}"}}'
        )

    def links_json(self, links: list[str]) -> str | None:
        """A message's link targets as JSON (most messages of a campaign share them)."""
        if not links:
            return None
        key = tuple(links)
        found = self._links_json.get(key)
        if found is None:
            if len(self._links_json) > 10_000:
                self._links_json.clear()
            found = self._links_json[key] = json.dumps(links)
        return found

    def rewrite(
        self, ref: str, text: str, body_html: str | None, campaign: str, variant: str | None
    ) -> Tracked:
        """Rewrite the links of one message and add its open pixel."""
        token = self._token(ref)
        click = f"{self.base}/c/"
        links: dict[str, int] = {}

        def tracked(url: str) -> str | None:
            target = self._targets.get((url, campaign, variant))
            if target is None:
                if url.startswith(self.base) or not url.startswith(("http://", "https://")):
                    return None
                if len(self._targets) > 10_000:
                    self._targets.clear()
                target = self._targets[url, campaign, variant] = self._with_utm(
                    url, campaign, variant
                )
            number = links.get(target)
            if number is None:
                if len(links) >= MAX_LINKS:
                    return None
                number = links[target] = len(links)
            return f"{click}{number}/{token}"

        def anchor(match: re.Match[str]) -> str:
            tag = match.group(0)
            if self.base in tag:  # our own link (the unsubscribe URL): never cached, left
                return tag
            if tag in self._anchors:
                plan = self._anchors[tag]
            else:
                plan = self._anchor_plan(tag)
                if len(self._anchors) > 10_000:
                    self._anchors.clear()
                self._anchors[tag] = plan
            if plan is None:
                return tag
            before, url, after = plan
            new = tracked(url)
            return tag if new is None else f"{before}{new}{after}"

        def text_url(match: re.Match[str]) -> str:
            found = match.group(0)
            if NOTRACK_MARK in found:
                return found
            url = found.rstrip(_TRAILING)
            new = tracked(url)
            return found if new is None else new + found[len(url) :]

        new_html = None
        if body_html is not None:
            new_html = _ANCHOR.sub(anchor, body_html)
            pixel = (
                f'<img src="{self.base}/o/{token}.gif" width="1" height="1" alt="" '
                'style="display:none">'
            )
            end = new_html.rfind("</body>")
            new_html = f"{new_html[:end]}{pixel}{new_html[end:]}" if end >= 0 else new_html + pixel
            if NOTRACK_MARK in new_html:
                new_html = new_html.replace(NOTRACK_MARK, "")
        new_text = self._text_url.sub(text_url, text)
        if NOTRACK_MARK in new_text:
            new_text = new_text.replace(NOTRACK_MARK, "")
        return Tracked(new_text, new_html, self.headers(ref), list(links))

    @staticmethod
    def _anchor_plan(tag: str) -> tuple[str, str, str] | None:
        """How to rewrite an ``<a>`` tag: the text before and after its URL, and the URL; None
        to leave it (``data-no-track``, the ``notrack`` filter, no href)."""
        if _NO_TRACK.search(tag):
            return None
        href = _HREF.search(tag)
        if href is None:
            return None
        raw = href.group(2) if href.group(2) is not None else href.group(3)
        if NOTRACK_MARK in raw:
            return None
        url = html.unescape(raw.strip())
        return f'{tag[: href.start()]}{href.group(1)}"', url, f'"{tag[href.end() :]}'

    def _with_utm(self, url: str, campaign: str, variant: str | None) -> str:
        if not self.settings.utm:
            return url
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        have = {k for k, _ in query}
        extra = {
            "utm_source": self.settings.utm_source,
            "utm_medium": self.settings.utm_medium,
            "utm_campaign": campaign,
            "utm_content": variant,
        }
        query.extend((k, v) for k, v in extra.items() if v and k not in have)
        return urlunsplit(parts._replace(query=urlencode(query)))


def strip_marks(text: str) -> str:
    """A part without ``notrack`` marks (for messages that are not tracked)."""
    return text.replace(NOTRACK_MARK, "") if NOTRACK_MARK in text else text
