"""Templates render in a sandbox: strict variables, escaped HTML, data never run as code."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from campaigns.errors import TemplateCheckError
from templates import MessageTemplate, build_context, make_environment
from templates.filters import date_format, money, or_default

FOLDER = Path(__file__).parent / "templates"


def context(**customer: Any) -> dict[str, Any]:
    base = {"customer_id": "c1", "first_name": "Ana", "monetary": 1234.5}
    return build_context(
        customer={**base, **customer},
        segment={"id": 1, "name": "VIP", "profile": {}},
        campaign={"name": "hello", "description": ""},
        now=datetime(2026, 11, 23),
        unsubscribe_url="https://x.example/u?c=c1",
    )


def load(name: str, subject: str = "Hi {{ customer.first_name }}") -> MessageTemplate:
    return MessageTemplate.load(make_environment(FOLDER), name, subject)


def test_renders_subject_text_and_html() -> None:
    message = load("hello").render(context())
    assert message.subject == "Hi Ana"
    assert message.text == "Hello Ana, you spent £1,234.50.\n"
    assert message.html == "<p>Hello Ana</p>\n"


def test_customer_data_is_text_never_template_code_or_markup() -> None:
    hostile = "{{ 7*7 }}<script>alert(1)</script>"
    message = load("hello").render(context(first_name=hostile))
    assert message.subject == "Hi {{ 7*7 }}<script>alert(1)</script>"
    assert "49" not in message.text
    assert message.html == "<p>Hello {{ 7*7 }}&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"


def test_missing_values_fall_back_only_where_asked() -> None:
    assert load("hello").render(context(first_name=float("nan"))).text.startswith("Hello there,")


def test_a_misspelt_attribute_gets_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "frist.txt.j2").write_text("Dear\n{{ customer.frist_name }}\n")
    template = MessageTemplate.load(make_environment(tmp_path), "frist", "Hello")
    with pytest.raises(TemplateCheckError) as caught:
        template.render(context())
    assert str(caught.value) == (
        "frist.txt.j2:2: customer has no attribute 'frist_name'; did you mean 'first_name'?"
    )
    (tmp_path / "seg.txt.j2").write_text("{{ segment.nmae }}\n")
    with pytest.raises(TemplateCheckError) as caught:
        MessageTemplate.load(make_environment(tmp_path), "seg", "Hi").render(context())
    assert (
        str(caught.value) == "seg.txt.j2:1: segment has no attribute 'nmae'; did you mean 'name'?"
    )


def test_a_missing_template_gets_a_did_you_mean() -> None:
    with pytest.raises(TemplateCheckError) as caught:
        load("helo")
    assert str(caught.value) == f"template helo.txt.j2 not found in {FOLDER}; did you mean 'hello'?"


def test_an_unknown_attribute_fails_with_template_and_line() -> None:
    with pytest.raises(TemplateCheckError) as caught:
        load("typo").render(context())
    # Jinja says "'dict object' has no attribute 'vouchr_code'"; we say which record lacks it.
    assert str(caught.value) == "typo.txt.j2:2: customer has no attribute 'vouchr_code'"


def test_a_syntax_error_names_file_and_line() -> None:
    with pytest.raises(TemplateCheckError) as caught:
        load("broken")
    assert str(caught.value) == (
        f"{FOLDER / 'broken.txt.j2'}:1: unexpected end of template, "
        "expected 'end of print statement'."
    )


def test_a_missing_template_names_the_folder() -> None:
    with pytest.raises(
        TemplateCheckError, match=r"^template nothing.txt.j2 not found in .*templates$"
    ):
        load("nothing")


def test_the_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(TemplateCheckError, match="access to attribute '__class__' of 'tuple'"):
        load("escape").render(context())


def test_a_bad_subject_is_reported() -> None:
    with pytest.raises(TemplateCheckError, match=r"^subject of template 'hello': unexpected '}'"):
        load("hello", subject="Hi {{ customer.first_name }")


def test_filters() -> None:
    assert money(12.5) == "£12.50"
    assert money(-1234, "EUR") == "-€1,234.00"
    assert money(3, "CHF") == "CHF 3.00"
    assert date_format(datetime(2025, 3, 3)) == "3 March 2025"
    assert date_format("2025-03-03", "%d/%m/%Y") == "03/03/2025"
    assert or_default(None, "x") == "x"
    assert or_default("", "x") == "x"
    assert or_default(0, "x") == 0


def test_headers_are_templates_too() -> None:
    template = MessageTemplate.load(
        make_environment(FOLDER),
        "hello",
        "Hi",
        {
            "X-Segment": "{{ segment.name }}",
            "Reply-To": "care+{{ customer.customer_id }}@x.example",
        },
    )
    message = template.render(context())
    assert message.subject == "Hi"
    assert message.headers == {"X-Segment": "VIP", "Reply-To": "care+c1@x.example"}
    with pytest.raises(TemplateCheckError, match=r"^header X-Bad of template 'hello': unexpected"):
        MessageTemplate.load(make_environment(FOLDER), "hello", "Hi", {"X-Bad": "{{ }"})
