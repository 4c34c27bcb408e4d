"""A campaign's message template (subject, text and optional HTML part) and its rendering."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

from jinja2 import Template, TemplateError, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from store.errors import TemplateCheckError
from templates.limits import RenderLimits, current, end_budget, start_budget
from templates.names import did_you_mean, explain_undefined


@dataclass(frozen=True)
class RenderedMessage:
    """One message, ready for a channel."""

    subject: str
    text: str
    html: str | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageTemplate:
    """The compiled parts of one campaign's message: ``NAME.txt.j2`` and optional ``NAME.html.j2``.

    Use :meth:`load` to compile; compile errors carry the template name and line.
    """

    name: str
    subject: Template
    text: Template
    html: Template | None
    #: The subject itself when it has no template syntax (most do not): nothing to render.
    static_subject: str | None = None
    #: Extra message headers, each a template (``X-Campaign``, ``Reply-To``...).
    headers: dict[str, Template] = field(default_factory=dict)
    #: Render the HTML part before the text part (tracked links are numbered in that order).
    html_first: bool = False

    @classmethod
    def load(
        cls,
        env: ImmutableSandboxedEnvironment,
        name: str,
        subject: str,
        headers: Mapping[str, str] | None = None,
        html_first: bool = False,
    ) -> MessageTemplate:
        """Compile the parts of template ``name``, the subject line and any header templates."""
        folder = _folder(env)
        text = _get(env, f"{name}.txt.j2", required=True, folder=folder)
        html = _get(env, f"{name}.html.j2", required=False, folder=folder)
        try:
            subject_template = env.from_string(subject)
        except TemplateSyntaxError as exc:
            raise TemplateCheckError(f"subject of template {name!r}: {exc.message}") from None
        compiled = {}
        for header, source in (headers or {}).items():
            try:
                compiled[header] = env.from_string(source)
            except TemplateSyntaxError as exc:
                raise TemplateCheckError(
                    f"header {header} of template {name!r}: {exc.message}"
                ) from None
        assert text is not None
        static = subject.strip() if "{" not in subject else None
        return cls(name, subject_template, text, html, static, compiled, html_first)

    def render(self, context: dict[str, Any]) -> RenderedMessage:
        """Render every part under one budget (:mod:`templates.limits`); a failure, whatever
        its cause (a filter given a missing value, a budget exceeded), is a
        :class:`TemplateCheckError` that names the part and the template line."""
        token = start_budget(getattr(self.text.environment, "render_limits", RenderLimits()))
        try:
            return self._render_parts(context)
        finally:
            end_budget(token)

    def _render_parts(self, context: dict[str, Any]) -> RenderedMessage:
        subject = self.static_subject
        if subject is None:
            subject = _render(self.subject, context, f"subject of {self.name}").strip()
        html: str | None
        if self.html_first and self.html is not None:
            html = _render(self.html, context, f"{self.name}.html.j2")
            text = _render(self.text, context, f"{self.name}.txt.j2")
        else:
            text = _render(self.text, context, f"{self.name}.txt.j2")
            html = _render(self.html, context, f"{self.name}.html.j2") if self.html else None
        return RenderedMessage(
            subject=subject,
            text=text,
            html=html,
            headers={
                header: _render(t, context, f"header {header} of {self.name}").strip()
                for header, t in self.headers.items()
            },
        )


def _folder(env: ImmutableSandboxedEnvironment) -> str:
    searchpath = getattr(env.loader, "searchpath", ["."])
    return str(searchpath[0])


def _get(
    env: ImmutableSandboxedEnvironment, filename: str, required: bool, folder: str
) -> Template | None:
    try:
        return env.get_template(filename)
    except TemplateNotFound:
        if required:
            known = [
                n.removesuffix(".txt.j2") for n in env.list_templates() if n.endswith(".txt.j2")
            ]
            hint = did_you_mean(filename.removesuffix(".txt.j2"), known)
            raise TemplateCheckError(f"template {filename} not found in {folder}{hint}") from None
        return None
    except TemplateSyntaxError as exc:
        raise TemplateCheckError(f"{Path(folder) / filename}:{exc.lineno}: {exc.message}") from None


def _render(template: Template, context: dict[str, Any], label: str) -> str:
    # Template.render copies the environment's globals (a ChainMap) into every new context; a
    # context over globals merged once per template is the same render at half the cost.
    merged = _GLOBALS.get(template)
    if merged is None:
        merged = _GLOBALS[template] = dict(template.globals)
    try:
        try:
            frame = template.environment.context_class(
                template.environment,
                {**merged, **context},
                template.name,
                template.blocks,
                globals=merged,
            )
            return _bounded_concat(template.root_render_func(frame))
        except Exception:
            template.environment.handle_exception()  # re-raises with template lines
            raise  # pragma: no cover - handle_exception always raises
    except TemplateError as exc:
        line = _template_line(exc, template)
        where = f"{label}:{line}" if line else label
        what = explain_undefined(str(exc), context) if isinstance(exc, UndefinedError) else exc
        raise TemplateCheckError(f"{where}: {what}") from None
    except RecursionError:
        raise TemplateCheckError(f"{label}: calls nested too deep") from None
    except Exception as exc:
        # A filter or method given a value it cannot take (one customer's missing amount...).
        line = _template_line(exc, template)
        where = f"{label}:{line}" if line else label
        raise TemplateCheckError(f"{where}: {type(exc).__name__}: {exc}") from None


def _bounded_concat(chunks: Iterator[str]) -> str:
    """The rendered chunks joined, within the size budget.

    Most messages are a few dozen chunks: joined at once and measured. A longer output (a loop)
    is measured as it comes, so that a loop cannot build gigabytes before the check. (Loops and
    calls watch the clock themselves: :mod:`templates.limits`.)
    """
    found = current()
    if found is None:
        return "".join(chunks)
    limit = found.limits.max_chars
    text = "".join(islice(chunks, _FEW_CHUNKS))
    size = len(text)
    following = next(chunks, None)
    if following is not None:
        parts = [text]
        for chunk in chain((following,), chunks):
            size += len(chunk)
            if size > limit:
                break
            parts.append(chunk)
        text = "".join(parts)
    if size > limit:
        found.check_size(size, "the rendered message")
    return text


#: Chunks joined without counting: a template's few dozen literal runs and expressions.
_FEW_CHUNKS = 64


#: Per compiled template, its globals as one dict. Weak keys: the daemon compiles templates anew
#: for every run, and a template no run uses any more must not be kept alive by this cache.
_GLOBALS: weakref.WeakKeyDictionary[Template, dict[str, Any]] = weakref.WeakKeyDictionary()


def _template_line(exc: BaseException, template: Template) -> int | None:
    # Jinja rewrites the traceback so that template frames carry the template's file name and
    # line; the deepest such frame is where the error happened.
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in {template.filename, "<template>"}:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
