"""Every example in README.md and docs/ holds: each ``$ campaign ...`` block prints what the page
shows (run in a fresh workspace, page by page), each ``toml`` block loads through the config
schema, and each shell block is run or marked with the reason it is not.

After a change that alters an example's output, ``python -m cli.examples --write`` rewrites the
pages from what the commands print.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import examples
from cli.examples import blocks, check_page, matches, pages

ROOT = Path(__file__).resolve().parents[1]


def describe(findings: list[examples.Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{finding.block.where}: {finding.problem}")
        lines.extend(f"    {line}" for line in finding.actual or [])
    return "\n".join(lines) + "\n(python -m cli.examples --write regenerates command output)"


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_example_of_the_page_holds(page: Path) -> None:
    findings = check_page(page)
    assert not findings, describe(findings)


def test_every_block_not_run_says_why() -> None:
    for page in pages():
        for block in blocks(page):
            if block.mark is not None:
                assert len(block.mark[1]) > 10, f"{block.where}: say why it is not run"


def test_an_ellipsis_stands_for_any_lines() -> None:
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert matches(["a", "...", "z"], ["a", "z"])
    assert not matches(["a", "...", "z"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])


def test_a_wrong_example_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(examples, "ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text(
        "```\n$ campaign status\nStore: nowhere\n```\n\n"
        "```toml\n[segmentation]\nk = 1\n```\n\n"
        "```sh\npip install campaign\n```\n\n"
        "<!-- example: not run: installs it -->\n```sh\npip install campaign\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "config.toml").write_text((ROOT / "config.toml").read_text(), encoding="utf-8")
    findings = check_page(page)
    assert [(f.block.line, f.problem.split("\n")[0]) for f in findings] == [
        (6, "1 validation error for Config"),
        (11, "a shell block that is neither run nor marked"),
        (1, "the output differs"),
    ]
    assert findings[2].actual is not None
    assert findings[2].actual[0] == "Store: sqlite:///.campaign/campaign.db"
    examples.write_page(page, findings)
    assert page.read_text(encoding="utf-8").startswith(
        "```\n$ campaign status\nStore: sqlite:///.campaign/campaign.db\n"
    )
