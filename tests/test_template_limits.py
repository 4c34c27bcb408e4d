"""Hostile templates (tests/templates/hostile/) fail fast, with their name, line and budget."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from campaigns.errors import TemplateCheckError
from templates import MessageTemplate, make_environment
from templates.limits import RenderLimits

HOSTILE = Path(__file__).parent / "templates" / "hostile"
SIZE = "is over the size budget (1,000,000, [settings.limits] max_message_chars)"
TIME = "over the render time budget (0.5 s per message, [settings.limits] render_seconds)"

CASES = {
    "nested_loops": f"nested_loops.txt.j2:1: {TIME}",
    "nested_lists": f"nested_lists.txt.j2:1: {TIME}",
    "repeat": f"repeat.txt.j2:1: a repeated string or list of 1,000,000,000 characters {SIZE}",
    "repeat_list": (
        f"repeat_list.txt.j2:1: a repeated string or list of 1,000,000,000 characters {SIZE}"
    ),
    "big_range": (
        "big_range.txt.j2:1: range of 1,000,000,000 items is over the limit "
        "(100,000, [settings.limits] max_range)"
    ),
    "recursive_macro": (
        "recursive_macro.txt.j2:1: calls nested deeper than 100 "
        "(a macro that calls itself without end?)"
    ),
    "doubling_macro": f"doubling_macro.txt.j2:1: an argument of 1,048,576 characters {SIZE}",
    "doubling_namespace": (
        f"doubling_namespace.txt.j2:1: namespace value 's' of 1,048,576 characters {SIZE}"
    ),
    "power": "power.txt.j2:1: 7 ** 99999 is too large to compute",
    "percent_width": (
        f"percent_width.txt.j2:1: a formatted string of 1,000,000,011 characters {SIZE}"
    ),
    "center_filter": f"center_filter.txt.j2:1: filter center of 999,999,999 characters {SIZE}",
    "center_method": f"center_method.txt.j2:1: str.center() of 999,999,999 characters {SIZE}",
    "format_width": (
        f"format_width.txt.j2:1: a formatted string of 1,000,000,012 characters {SIZE}"
    ),
    "replace_growth": f"replace_growth.txt.j2:1: str.replace() of 1,002,000 characters {SIZE}",
    "join_growth": f"join_growth.txt.j2:1: filter join of 10,000,488,890 characters {SIZE}",
    "long_output": f"long_output.txt.j2: the rendered message of 1,000,100 characters {SIZE}",
    "lipsum": "lipsum.txt.j2:1: unknown name 'lipsum'",
    "self_include": "self_include.txt.j2: calls nested too deep",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_template_fails_fast_with_a_clear_error(name: str) -> None:
    env = make_environment(HOSTILE, RenderLimits(seconds=0.5))
    template = MessageTemplate.load(env, name, "Hello")
    started = time.monotonic()
    with pytest.raises(TemplateCheckError) as caught:
        template.render({"customer": {}})
    assert str(caught.value) == CASES[name]
    # Within the budget (and some slack for a loaded machine), never minutes.
    assert time.monotonic() - started < 5


def test_every_hostile_template_has_a_case() -> None:
    assert sorted(p.name.removesuffix(".txt.j2") for p in HOSTILE.glob("*.txt.j2")) == sorted(CASES)


def test_real_templates_render_within_the_limits(tmp_path: Path) -> None:
    # Loops, ranges, macros, namespaces and filters well inside the budget work as in Jinja.
    (tmp_path / "fine.txt.j2").write_text(
        "{% macro item(n) %}<{{ n }}>{% endmacro %}"
        "{% set ns = namespace(total=0) %}"
        "{% for i in range(5) %}{{ item(i) }}{% set ns.total = ns.total + i %}"
        "{{ loop.length }}{% endfor %} {{ ns.total }} {{ 'ab' * 3 }} {{ '%05d' % 42 }} "
        "{{ 'x' | center(5) }}| {{ ['a', 'b'] | join(', ') }} {{ 2 ** 10 }} {{ 19.5 | money }}"
    )
    env = make_environment(tmp_path)
    text = MessageTemplate.load(env, "fine", "Hi").render({}).text
    assert text == "<0>5<1>5<2>5<3>5<4>5 10 ababab 00042   x  | a, b 1024 £19.50"


def test_a_smaller_budget_is_taken_from_the_limits(tmp_path: Path) -> None:
    (tmp_path / "t.txt.j2").write_text("{{ 'x' * 200 }}{% for i in range(50) %}{% endfor %}")
    env = make_environment(tmp_path, RenderLimits(max_chars=100, max_range=10))
    with pytest.raises(TemplateCheckError, match=r"200 characters is over the size budget \(100"):
        MessageTemplate.load(env, "t", "Hi").render({})
