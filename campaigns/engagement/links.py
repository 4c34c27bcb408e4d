"""Link rewriting at render time: each message's links become signed tracked links.

In the HTML part every ``<a href="http...">`` is rewritten, unless the tag carries the attribute
``data-no-track``; in the text part every ``http://`` or ``https://`` URL is. A URL a template
passes through the ``notrack`` filter is left alone in both parts. The same URL in both parts
gets one link number. The targets (with UTM parameters when configured) are kept with the
message, and the endpoint redirects only to those: never an open redirect.

An open pixel goes before ``</body>`` of the HTML part. The message's unsubscribe URL is a signed
token too; ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058) point at it.

Two ways to the same message: :meth:`Tracker.rewrite` scans a rendered message; compiled links
(:meth:`Tracker.environment`, :meth:`Tracker.begin`, :meth:`Tracker.finish`) rewrite the static
links of the templates once, when they are compiled, and scan only a part that still holds a URL
of its own (one a variable printed), which is cheaper per message.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jinja2 import Environment, pass_context
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup

from campaigns.config.schema import Config, TrackingConfig
from campaigns.engagement.tokens import Signer, load_keys
from templates.filters import NOTRACK_MARK
from templates.message import MessageTemplate, RenderedMessage

#: At most this many links of one message are tracked (the link number has two bytes; a message
#: with more is a mistake, and its further links stay as they are).
MAX_LINKS = 200

_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_NO_TRACK = re.compile(r"\sdata-no-track\b", re.IGNORECASE)
_Env = TypeVar("_Env", bound=Environment)

#: The parts of a message, as compiled links know them.
HTML, TEXT = "html", "text"
#: The filters compiled templates call (in the environments of :meth:`Tracker.environment`
#: only): a static link of a part, the unsubscribe URL of a part, what a template may do.
LINK_FILTER = {HTML: "campaign_tracked_link_html", TEXT: "campaign_tracked_link_text"}
OWN_FILTER = {HTML: "campaign_own_link_html", TEXT: "campaign_own_link_text"}
FLAGS_FILTER = "campaign_template_flags"

#: A template that can capture output (``set`` and ``filter`` blocks, macros, ``call``,
#: ``import``, ``self``, ``super``, recursive loops): a compiled link may be dropped, repeated
#: or changed there, so the message's output is checked link by link.
CAPTURES = 1
#: An HTML template with ``safe``, an ``autoescape`` block or a character reference in its
#: text: an href could spell ``://`` with entities, so the part is searched for them.
ENTITIES = 2
_CAPTURING_TAGS = frozenset({"filter", "macro", "call", "import", "from"})
_CAPTURING_NAMES = frozenset({"self", "super", "caller", "recursive", "varargs", "kwargs"})
_ENTITY = re.compile(r"&(?:#|colon|sol)", re.IGNORECASE)
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
        self._click = f"{self.base}/c/"
        # What a message's URLs are made of, but for its token: a link's start by number, the
        # open pixel around the token (so a tracked URL is one concatenation per message).
        self._numbered = [f"{self._click}{number}/" for number in range(MAX_LINKS)]
        self._pixel = (
            f'<img src="{self.base}/o/',
            '.gif" width="1" height="1" alt="" style="display:none">',
        )
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
        # The message being rewritten: its token, campaign, variant, the link targets numbered
        # so far and how many compiled links each part received (see begin and finish).
        self._ref = ""
        self._token_now = ""
        self._campaign = ""
        self._variant: str | None = None
        self._links: dict[str, int] = {}
        self._calls_html = self._calls_text = self._own_html = self._own_text = 0
        self._flags = 0
        # Compiled links: what each static link of a template is (URL, source text, part).
        self._static: list[tuple[str, str]] = []
        self._static_index: dict[tuple[str, str], int] = {}
        #: Compiled link index to its target for the current campaign and variant.
        self._static_targets: dict[int, str] = {}
        self._environments: dict[int, tuple[Environment, Environment]] = {}

    @classmethod
    def from_config(cls, config: Config) -> Tracker | None:
        """The run's tracker, or None without ``[tracking]``; a missing secret is a ConfigError."""
        if config.tracking is None:
            return None
        return cls(config.tracking, Signer(load_keys(config.tracking, config.root)))

    def _token(self, ref: str) -> str:
        last = self._last
        if last[0] != ref:  # asked for twice or more per message
            last = self._last = (ref, self.signer.token(ref))
        return last[1]

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

    # -- one message -----------------------------------------------------------------------

    def begin(self, ref: str, campaign: str, variant: str | None) -> None:
        """Start message ``ref``: the links its templates render from now on are numbered for
        it (compiled links, see :meth:`environment`), until :meth:`finish`."""
        self._ref = ref
        last = self._last
        self._token_now = last[1] if last[0] == ref else self._token(ref)
        if campaign != self._campaign or variant != self._variant:
            self._static_targets = {}
            self._campaign = campaign
            self._variant = variant
        self._links = {}
        self._calls_html = self._calls_text = self._own_html = self._own_text = self._flags = 0

    def _link(self, url: str) -> str | None:
        """The tracked URL of ``url`` in the current message, or None to leave it as it is."""
        key = (url, self._campaign, self._variant)
        target = self._targets.get(key)
        if target is None:
            if url.startswith(self.base) or not url.startswith(("http://", "https://")):
                return None
            if len(self._targets) > 10_000:
                self._targets.clear()
            target = self._targets[key] = self._with_utm(url, self._campaign, self._variant)
        links = self._links
        number = links.get(target)
        if number is None:
            if len(links) >= MAX_LINKS:
                return None
            number = links[target] = len(links)
        return f"{self._click}{number}/{self._token_now}"

    def _compiled_link(self, index: int) -> str | None:
        """:meth:`_link` of compiled link ``index`` (its URL was checked when compiled)."""
        targets = self._static_targets
        target = targets.get(index)
        if target is None:
            url = self._static[index][0]
            target = targets[index] = self._with_utm(url, self._campaign, self._variant)
        links = self._links
        number = links.get(target)
        if number is None:
            if len(links) >= MAX_LINKS or not self._token_now:
                return None
            number = links[target] = len(links)
        return self._numbered[number] + self._token_now

    def rewrite(
        self, ref: str, text: str, body_html: str | None, campaign: str, variant: str | None
    ) -> Tracked:
        """Rewrite the links of one message rendered without compiled links (by scanning its
        parts) and add its open pixel."""
        self.begin(ref, campaign, variant)
        new_html = self._scan_html(body_html) if body_html is not None else None
        new_text, new_html = self._done(self._scan_text(text), new_html)
        return Tracked(new_text, new_html, self.headers(ref), list(self._links))

    def finish(
        self, message: RenderedMessage, plain: MessageTemplate, context: dict[str, Any]
    ) -> tuple[str, str | None]:
        """The text and HTML parts of the current message (see :meth:`begin`), rendered from
        :meth:`environment`'s templates: its static links are tracked already. A part with
        any other URL (one a variable produced, an ``<a>`` the compiler could not see whole)
        is scanned as :meth:`rewrite` does: it has more ``://`` than the compiled links and
        unsubscribe URLs rendered into it. When a template that can capture output took part
        (:data:`CAPTURES`), every compiled link must be in the output exactly as rendered, else
        the message is rendered again from ``plain`` and rewritten by scanning.
        :meth:`links_json` has its links afterwards."""
        html, text = message.html, message.text
        flags = self._flags
        if flags & CAPTURES:
            if not self._compiled_links_intact(html, text):
                again = plain.render(context)
                self.begin(self._ref, self._campaign, self._variant)
                new_html = self._scan_html(again.html) if again.html is not None else None
                return self._done(self._scan_text(again.text), new_html)
            else:
                scan_html = html is not None and html.count("://") != html.count(self.base)
                scan_text = text.count("://") != text.count(self.base)
        else:
            scan_html = html is not None and html.count("://") != self._calls_html + self._own_html
            scan_text = text.count("://") != self._calls_text + self._own_text
        if html is not None and (scan_html or (flags & ENTITIES and _ENTITY.search(html))):
            html = self._scan_html(html)
        if scan_text:
            text = self._scan_text(text)
        return self._done(text, html)

    def message_links_json(self) -> str | None:
        """The link targets of the current message as JSON (see :meth:`links_json`)."""
        if not self._links:
            return None
        key = tuple(self._links)
        found = self._links_json.get(key)
        if found is None:
            if len(self._links_json) > 10_000:
                self._links_json.clear()
            found = self._links_json[key] = json.dumps(list(key))
        return found

    def _compiled_links_intact(self, html: str | None, text: str) -> bool:
        click = self._click
        if (html.count(click) if html is not None else 0) != self._calls_html:
            return False
        if text.count(click) != self._calls_text:
            return False
        token = self._token_now
        for number in range(len(self._links)):
            url = f"{click}{number}/{token}"
            if url not in text and (html is None or url not in html):
                return False
        return True

    def _done(self, text: str, html: str | None) -> tuple[str, str | None]:
        """The parts with the open pixel before the last ``</body>`` of the HTML part (or at
        its end), without ``notrack`` marks."""
        if html is not None:
            head, tail = self._pixel
            end = html.rfind("</body>")
            if end >= 0:
                html = f"{html[:end]}{head}{self._token_now}{tail}{html[end:]}"
            else:
                html = f"{html}{head}{self._token_now}{tail}"
            if NOTRACK_MARK in html:
                html = html.replace(NOTRACK_MARK, "")
        if NOTRACK_MARK in text:
            text = text.replace(NOTRACK_MARK, "")
        return text, html

    def _scan_html(self, body_html: str) -> str:
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
            new = self._link(url)
            return tag if new is None else f"{before}{new}{after}"

        return _ANCHOR.sub(anchor, body_html)

    def _scan_text(self, text: str) -> str:
        def text_url(match: re.Match[str]) -> str:
            found = match.group(0)
            if NOTRACK_MARK in found:
                return found
            url = found.rstrip(_TRAILING)
            new = self._link(url)
            return found if new is None else new + found[len(url) :]

        return self._text_url.sub(text_url, text)

    # -- compiled links --------------------------------------------------------------------

    def environment(self, env: _Env) -> _Env:
        """``env`` with compiled links: its ``.html.j2`` and ``.txt.j2`` templates render each
        static link (an ``<a href="http...">`` whole in the template's text; a URL in a text
        part with a space, a line end or ``<>"'`` on both sides) as the current message's
        tracked link, without scanning. Render between :meth:`begin` and :meth:`finish`."""
        found = self._environments.get(id(env))
        if found is not None and found[0] is env:
            return cast(_Env, found[1])
        tracked = env.overlay(extensions=[_LinkCompiler], cache_size=400)
        tracked.filters = dict(env.filters)

        # (pass_context: a filter of a constant is otherwise evaluated once, when compiled.)
        @pass_context
        def link_html(context: object, index: int) -> str:
            # _compiled_link written out: a link already numbered in this message is the
            # common case, and it costs two lookups.
            target = self._static_targets.get(index)
            number = self._links.get(target) if target is not None else None
            new = (
                self._numbered[number] + self._token_now
                if number is not None
                else self._compiled_link(index)
            )
            if new is None:
                return Markup(self._static[index][1])
            self._calls_html += 1
            return new  # letters, digits and "/:.-_": escaping keeps it as it is

        @pass_context
        def link_text(context: object, index: int) -> str:
            target = self._static_targets.get(index)
            number = self._links.get(target) if target is not None else None
            new = (
                self._numbered[number] + self._token_now
                if number is not None
                else self._compiled_link(index)
            )
            if new is None:
                return self._static[index][1]
            self._calls_text += 1
            return new

        def own_html(value: object) -> object:
            if isinstance(value, str):
                self._own_html += value.count("://")
            return value

        def own_text(value: object) -> object:
            if isinstance(value, str):
                self._own_text += value.count("://")
            return value

        @pass_context
        def flags(context: object, value: int) -> str:
            self._flags |= value
            return ""

        tracked.filters.update(
            {
                LINK_FILTER[HTML]: link_html,
                LINK_FILTER[TEXT]: link_text,
                OWN_FILTER[HTML]: own_html,
                OWN_FILTER[TEXT]: own_text,
                FLAGS_FILTER: flags,
            }
        )
        tracked.extend(link_tracker=self)
        self._environments[id(env)] = (env, tracked)
        return tracked

    def compile_link(self, url: str, source: str) -> int | None:
        """The index of a static link for :data:`LINK_FILTER`, or None to leave it as written
        (not a tracked URL)."""
        if url.startswith(self.base) or not url.startswith(("http://", "https://")):
            return None
        key = (url, source)
        index = self._static_index.get(key)
        if index is None:
            index = self._static_index[key] = len(self._static)
            self._static.append(key)
        return index

    def compile_html(self, data: str) -> list[str | int]:
        """A piece of an HTML template's text as text and compiled link indexes."""
        out: list[str | int] = []
        rest = 0
        for match in _ANCHOR.finditer(data):
            tag = match.group(0)
            if self.base in tag:
                continue
            plan = self._anchor_plan(tag)
            href = _HREF.search(tag)
            if plan is None or href is None:
                continue
            raw = href.group(2) if href.group(2) is not None else href.group(3)
            if '"' in raw:
                continue
            index = self.compile_link(plan[1], raw)
            if index is None:
                continue
            out += [data[rest : match.start()] + plan[0], index]
            out.append(plan[2])
            rest = match.end()
        if not out:
            return [data]
        out.append(data[rest:])
        return out

    def compile_text(self, data: str) -> list[str | int]:
        """A piece of a text template's text as text and compiled link indexes: a URL is
        compiled only when what is around it in the output cannot join it (a space, a line
        or ``<>"'`` on both sides, inside this piece)."""
        out: list[str | int] = []
        rest = 0
        for match in self._text_url.finditer(data):
            found = match.group(0)
            start, end = match.span()
            if (
                NOTRACK_MARK in found
                or not _apart(data[:start], before=True)
                or not _apart(data[end:], before=False)
            ):
                continue
            url = found.rstrip(_TRAILING)
            index = self.compile_link(url, url)
            if index is None:
                continue
            out += [data[rest:start], index]
            rest = start + len(url)
        if not out:
            return [data]
        out.append(data[rest:])
        return out

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


def _apart(piece: str, before: bool) -> bool:
    """Whether the template text ``piece`` before (or after) a URL keeps it apart from what is
    rendered next to it: its nearest character is a space, a line end or ``<>"'``."""
    char = piece[-1:] if before else piece[:1]
    return bool(char) and (char.isspace() or char in "<>\"'")


class _LinkCompiler(Extension):
    """Compiles the static links of ``.html.j2`` and ``.txt.j2`` templates to calls of
    :data:`LINK_FILTER`, counts each ``{{ unsubscribe_url }}`` (:data:`OWN_FILTER`) and starts
    the template with its :data:`CAPTURES` and :data:`ENTITIES` flags (see
    :meth:`Tracker.environment`). Other templates, a subject or a header are left as written."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tracker: Tracker | None = getattr(self.environment, "link_tracker", None)
        name = stream.name or ""
        if tracker is None or not name.endswith((".html.j2", ".txt.j2")):
            yield from stream
            return
        part = HTML if name.endswith(".html.j2") else TEXT
        compile_part = tracker.compile_html if part == HTML else tracker.compile_text
        tokens = list(stream)
        flags = _template_flags(tokens, part)
        if flags:
            yield from _filter_call(1, flags, FLAGS_FILTER)
        for number, token in enumerate(tokens):
            if token.type == "data":
                for piece in compile_part(token.value):
                    if isinstance(piece, int):
                        yield from _filter_call(token.lineno, piece, LINK_FILTER[part])
                    elif piece:
                        yield Token(token.lineno, "data", piece)
                continue
            yield token
            if (
                token.type == "name"
                and token.value == "unsubscribe_url"
                and tokens[number - 1].type == "variable_begin"
                and number + 1 < len(tokens)
                and tokens[number + 1].type == "variable_end"
            ):
                yield Token(token.lineno, "pipe", "|")
                yield Token(token.lineno, "name", OWN_FILTER[part])


def _filter_call(line: int, argument: int, name: str) -> Iterator[Token]:
    """The tokens of ``{{ ARGUMENT|NAME }}``."""
    yield Token(line, "variable_begin", "{{")
    yield Token(line, "integer", argument)  # type: ignore[arg-type]  # the lexer's own ints
    yield Token(line, "pipe", "|")
    yield Token(line, "name", name)
    yield Token(line, "variable_end", "}}")


def _template_flags(tokens: list[Token], part: str) -> int:
    """:data:`CAPTURES` and :data:`ENTITIES` of a template, from its tokens."""
    flags = 0
    for number, token in enumerate(tokens):
        if token.type == "data":
            if part == HTML and _ENTITY.search(token.value):
                flags |= ENTITIES
            continue
        if token.type != "name":
            continue
        value = token.value
        if value in _CAPTURING_NAMES:
            flags |= CAPTURES
        elif part == HTML and value == "safe":
            flags |= ENTITIES
        if number == 0 or tokens[number - 1].type != "block_begin":
            continue
        if value in _CAPTURING_TAGS:
            flags |= CAPTURES
        elif value == "autoescape" and part == HTML:
            flags |= ENTITIES
        elif value == "set":  # a block ({% set x %}...{% endset %}) captures; x = ... does not
            for following in tokens[number + 1 :]:
                if following.type == "assign":
                    break
                if following.type == "block_end":
                    flags |= CAPTURES
                    break
    return flags
