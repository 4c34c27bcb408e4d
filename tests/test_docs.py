"""The documentation stays true: the README is a short front door with the two commands near its
top, and the manual's command reference (docs/cli.md) matches --help and names every command."""

from __future__ import annotations

from pathlib import Path

from cli.main import cli
from cli.reference import END, START, reference_markdown, replace_block

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "cli.md"


def test_command_reference_is_current() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert START in text
    assert END in text
    assert replace_block(text, reference_markdown()) == text, (
        "docs/cli.md's command reference is stale: run `python -m cli.reference docs/cli.md`"
    )


def test_every_command_is_documented() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"### `campaign {name}`" in text


def test_the_two_commands_are_near_the_top() -> None:
    top = "\n".join(README.read_text(encoding="utf-8").splitlines()[:40])
    assert "pip install -e '.[dev]' && campaign run" in top
    assert "pip install -e '.[dev]' && python -m pytest" in top


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move topics to docs/"


def test_every_docs_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f": {page.name}" in nav, f"docs/{page.name} is missing from mkdocs.yml's nav"
