"""Read ``config.toml`` into a :class:`~campaigns.config.schema.Config`, or fail precisely.

Every error names the file, the line (where the key is written in the file) and the dotted key path,
for example ``config.toml:42: campaigns.winback.channel: unknown channel 'email'; defined
channels: 'export'``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from campaigns.config.schema import CAMPAIGN_NAME, Config, FileChannel
from campaigns.errors import ConfigError

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)

#: A model check's message about one item of a list: "steps[3].then: goes to ...".
_NESTED = re.compile(r"^(steps)\[(\d+)\]\.(\w+): (.*)$", re.DOTALL)


def _split_key(dotted: str) -> list[str]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[^.\s]+", dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path written in a TOML document to its 1-based line number.

    Array-of-tables entries are numbered from 0 in the path (as pydantic numbers them), so
    ``[[a]]`` followed by ``x = 1`` gives ``("a", 0, "x")``. Keys inside inline tables share the
    line of their parent key. A scanner, not a parser: tomllib has already accepted the text.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    array_counts: dict[tuple[str | int, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            path: tuple[str | int, ...] = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                index = array_counts.get(path, -1) + 1
                array_counts[path] = index
                path = (*path, index)
            table = path
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            full = (*table, *_split_key(key.group(1)))
            lines.setdefault(full, number)
    return lines


def _line_for(loc: Sequence[str | int], lines: Mapping[tuple[str | int, ...], int]) -> int | None:
    # The deepest prefix of the error's location that is written in the file.
    for end in range(len(loc), 0, -1):
        found = lines.get(tuple(loc[:end]))
        if found is not None:
            return found
    return None


def format_loc(loc: Sequence[str | int]) -> str:
    """A pydantic location as our dotted key path; array items are numbered from 1."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _clean_loc(loc: Sequence[str | int], data: Mapping[str, Any], kind: str) -> list[str | int]:
    """Drop the steps of a pydantic location that the user never wrote.

    A discriminated union adds the tag value ("schedule", "file", or a ``tag:`` name of a
    callable discriminator) as a step, and function validators add their own names; walking the
    data alongside the location tells them apart from real keys. A bad or missing tag is
    reported at the ``type`` key.
    """
    cleaned: list[str | int] = []
    node: Any = data
    for part in loc:
        if isinstance(node, Mapping) and isinstance(part, str) and part not in node:
            if node.get("type") == part or part.startswith(("function-", "tag:")):
                continue
        elif isinstance(part, str) and part.startswith(("function-", "tag:")):
            continue
        cleaned.append(part)
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    if kind in {"union_tag_invalid", "union_tag_not_found"} and cleaned[-1:] != ["type"]:
        cleaned.append("type")
    return cleaned


def _message(error: Mapping[str, Any], loc: Sequence[str | int]) -> str:
    kind = error["type"]
    msg = str(error["msg"])
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {value!r}"
    if kind == "union_tag_invalid":
        return f"must be one of {ctx.get('expected_tags')}, got {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"is required, one of {ctx.get('expected_tags')}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "too_short":
        return f"must not be empty, got {value!r}"
    msg = msg.replace("Input should be", "must be").replace("input should be", "must be")
    return f"{msg[:1].lower()}{msg[1:]}, got {value!r}"


def _suggest(error: Mapping[str, Any], loc: Sequence[str | int], data: Mapping[str, Any]) -> str:
    """For an unknown key, suggest the closest allowed key."""
    if error["type"] != "extra_forbidden" or not loc:
        return ""
    allowed = _known_keys_at(loc[:-1], data)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    if allowed:
        return f"; allowed keys: {', '.join(allowed)}"
    return ""


def _known_keys_at(parent: Sequence[str | int], data: Mapping[str, Any]) -> list[str]:
    """The keys allowed in the table at ``parent`` (for "did you mean" on unknown keys)."""
    annotation: Any = Config
    node: Any = data
    for part in parent:
        node = node.get(part) if isinstance(node, Mapping) else None
        model = _model_in(annotation, node)
        if model is not None and isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        elif get_origin(annotation) is dict:  # a user-named entry: campaigns.NAME
            annotation = get_args(annotation)[1]
    model = _model_in(annotation, node)
    return sorted(model.model_fields) if model is not None else []


def _model_in(annotation: Any, node: Any) -> type[BaseModel] | None:
    """The pydantic model a value is checked against, through Annotated unions and dicts."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is Annotated:
        return _model_in(get_args(annotation)[0], node)
    candidates = [
        a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
    ]
    if isinstance(node, Mapping) and "type" in node:
        for candidate in candidates:
            tag = candidate.model_fields.get("type")
            if tag is not None and node["type"] in get_args(tag.annotation):
                return candidate
    return candidates[0] if candidates else None


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found; create one with 'campaign init DIR'"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"^(.*) \(at line (\d+), column (\d+)\)$", str(exc))
        if found:
            what, line, column = found.groups()
            raise ConfigError(f"{path}:{line}:{column}: invalid TOML: {what}") from None
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    lines = key_lines(text)
    try:
        config = Config.model_validate({**data, "root": path.resolve().parent, "file": path})
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            loc = _clean_loc(error["loc"], data, error["type"])
            message = _message(error, loc)
            nested = _NESTED.match(message)
            if nested:  # a check across a table's items names the item's key (journey steps)
                loc = [*loc, nested.group(1), int(nested.group(2)) - 1, nested.group(3)]
                message = nested.group(4)
            line = _line_for(loc, lines)
            where = f"{path}:{line}" if line else f"{path}"
            messages.append(f"{where}: {format_loc(loc)}: {message}{_suggest(error, loc, data)}")
        raise ConfigError("\n".join(messages)) from None
    _check_references(config, path, lines)
    return config


def _check_references(config: Config, path: Path, lines: Mapping[Any, int]) -> None:
    """Checks across keys: campaign names are usable, and campaigns use channels that exist."""
    errors = []
    for name, campaign in config.campaigns.items():
        if not CAMPAIGN_NAME.match(name):
            loc: tuple[str, ...] = ("campaigns", name)
            errors.append(
                f"{path}:{_line_for(loc, lines)}: {format_loc(loc)}: a campaign name must be "
                "lower-case letters, digits, '-' or '_'"
            )
        if campaign.channel not in config.channels:
            loc = ("campaigns", name, "channel")
            line = _line_for(loc, lines)
            defined = ", ".join(repr(c) for c in sorted(config.channels))
            errors.append(
                f"{path}:{line}: {format_loc(loc)}: unknown channel {campaign.channel!r}; "
                f"defined channels: {defined}"
            )
    for name, journey in config.journeys.items():
        loc = ("journeys", name)
        if not CAMPAIGN_NAME.match(name):
            errors.append(
                f"{path}:{_line_for(loc, lines)}: {format_loc(loc)}: a journey name must be "
                "lower-case letters, digits, '-' or '_'"
            )
        if name in config.campaigns:
            errors.append(
                f"{path}:{_line_for(loc, lines)}: {format_loc(loc)}: a campaign is called "
                f"{name!r} too; journeys and campaigns share the outbox, give them different names"
            )
        channels = [(("journeys", name, "channel"), journey.channel)] + [
            (("journeys", name, "steps", i, "channel"), step.channel)
            for i, step in enumerate(journey.steps)
            if step.channel is not None
        ]
        for where, channel_name in channels:
            if channel_name not in config.channels:
                defined = ", ".join(repr(c) for c in sorted(config.channels))
                errors.append(
                    f"{path}:{_line_for(where, lines)}: {format_loc(where)}: unknown channel "
                    f"{channel_name!r}; defined channels: {defined}"
                )
    root = config.root.resolve()
    for name, channel in config.channels.items():
        if not isinstance(channel, FileChannel) or channel.allow_outside:
            continue
        directory = config.path(channel.directory).resolve()
        if not directory.is_relative_to(root):
            loc = ("channels", name, "directory")
            errors.append(
                f"{path}:{_line_for(loc, lines)}: {format_loc(loc)}: "
                f"{str(channel.directory)!r} is outside the workspace ({root}); write inside it, "
                f"or set allow_outside = true in [channels.{name}]"
            )
    if errors:
        raise ConfigError("\n".join(errors))


def where_in_config(config: Config, *loc: str | int) -> str:
    """``config.toml:42: campaigns.winback.template`` for a key of a loaded config: the file and
    line where the key (or its nearest written parent) is, then the dotted key path."""
    path = format_loc(loc)
    if config.file is None:
        return path
    try:
        lines = key_lines(config.file.read_text(encoding="utf-8"))
    except OSError:
        return f"{config.file}: {path}"
    line = _line_for(loc, lines)
    return f"{config.file}:{line}: {path}" if line else f"{config.file}: {path}"
