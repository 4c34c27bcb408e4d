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
_TEXT_URL = re.compile(r"\u2063?https?://[^\s<>\"'\u2063]+\u2063?")
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
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

    @classmethod
    def from_config(cls, config: Config) -> Tracker | None:
        """The run's tracker, or None without ``[tracking]``; a missing secret is a ConfigError."""
        if config.tracking is None:
            return None
        return cls(config.tracking, Signer(load_keys(config.tracking, config.root)))

    def unsubscribe_url(self, ref: str) -> str:
        """The signed unsubscribe URL of message ``ref`` (a page on GET, one-click on POST)."""
        return f"{self.base}/u/{self.signer.token('u', ref)}"

    def headers(self, ref: str) -> dict[str, str]:
        """RFC 8058 one-click unsubscribe headers for message ``ref``."""
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url(ref)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    def rewrite(
        self, ref: str, text: str, body_html: str | None, campaign: str, variant: str | None
    ) -> Tracked:
        """Rewrite the links of one message and add its open pixel."""
        links: dict[str, int] = {}
        marks: dict[str, str] = {}

        def number(url: str) -> int | None:
            target = self._with_utm(url, campaign, variant)
            found = links.get(target)
            if found is None:
                if len(links) >= MAX_LINKS:
                    return None
                found = links[target] = len(links)
            return found

        def tracked_url(url: str) -> str:
            if url.startswith(self.base) or not url.startswith(("http://", "https://")):
                return url
            link = number(url)
            if link is None:
                return url
            key = f"{link}"
            if key not in marks:
                marks[key] = f"{self.base}/c/{self.signer.token('c', ref, link)}"
            return marks[key]

        def anchor(match: re.Match[str]) -> str:
            tag = match.group(0)
            if _NO_TRACK.search(tag):
                return tag
            href = _HREF.search(tag)
            if href is None:
                return tag
            raw = href.group(2) if href.group(2) is not None else href.group(3)
            if NOTRACK_MARK in raw:
                return tag
            url = html.unescape(raw.strip())
            new = tracked_url(url)
            if new == url:
                return tag
            return f'{tag[: href.start()]}{href.group(1)}"{new}"{tag[href.end() :]}'

        def text_url(match: re.Match[str]) -> str:
            found = match.group(0)
            if NOTRACK_MARK in found:
                return found
            url = found.rstrip(_TRAILING)
            return tracked_url(url) + found[len(url) :]

        new_html = None
        if body_html is not None:
            new_html = _ANCHOR.sub(anchor, body_html)
            pixel = (
                f'<img src="{self.base}/o/{self.signer.token("o", ref)}.gif" width="1" '
                'height="1" alt="" style="display:none">'
            )
            end = _BODY_END.search(new_html)
            new_html = (
                f"{new_html[: end.start()]}{pixel}{new_html[end.start() :]}"
                if end is not None
                else new_html + pixel
            )
            new_html = new_html.replace(NOTRACK_MARK, "")
        new_text = _TEXT_URL.sub(text_url, text).replace(NOTRACK_MARK, "")
        return Tracked(new_text, new_html, self.headers(ref), list(links))

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
