"""The README stays true: its command reference matches --help and names every command."""

from __future__ import annotations

from pathlib import Path

from cli.main import cli
from cli.reference import END, START, reference_markdown, replace_block

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_command_reference_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert START in text
    assert END in text
    assert replace_block(text, reference_markdown()) == text, (
        "README.md's command reference is stale: run `python -m cli.reference README.md`"
    )


def test_every_command_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"### `campaign {name}`" in text


def test_the_two_commands_are_near_the_top() -> None:
    top = "\n".join(README.read_text(encoding="utf-8").splitlines()[:40])
    assert "pip install -e '.[dev]' && campaign run" in top
    assert "pip install -e '.[dev]' && python -m pytest" in top
