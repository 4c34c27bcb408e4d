"""The manual's examples, run: every ``$ campaign ...`` block in README.md and docs/*.md is run in a
scratch workspace and its output compared (or rewritten), every ``toml`` block is loaded through
the config schema, and every ``sh`` block is either run or marked as not run, with the reason.

    python -m cli.examples                    # check every page; list the blocks that differ
    python -m cli.examples --write            # rewrite the output of every $ campaign block
    python -m cli.examples --write README.md  # only these pages

Each page is one session: a workspace made by ``campaign init`` in a temporary folder (the
demo shop, 5,000 customers) in which the page's ``$ campaign`` blocks run in order, so that a
second ``campaign run`` sees what the first did. A block shows one command and its output; a
line ``...`` in the output stands for any number of lines. Other demos change the example
config or the templates: regenerate the pages after such a change and commit them.

Marking a block: an HTML comment on the line before its fence.

    <!-- example: not run: installs packages -->        the block is not run; the reason is required
    <!-- example: fragment: two alternative keys -->   a TOML block that is not valid on its own
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
_MARK = re.compile(r"^\s*<!-- example: (not run|fragment): (.+?) -->\s*$")


@dataclass
class Block:
    """A fenced block of a Markdown page."""

    page: Path
    #: 1-based line of the opening fence.
    line: int
    language: str
    indent: str
    body: list[str]
    #: "not run" or "fragment" with its reason, from the comment before the fence.
    mark: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def shell_commands(self) -> list[str] | None:
        """The commands of a shell block made only of ``campaign ...`` lines (comments and
        blank lines aside), which are run and must succeed; None for other shell blocks."""
        lines = [line.split("  #")[0].strip() for line in self.body]
        lines = [line for line in lines if line and not line.startswith("#")]
        if lines and all(line.startswith("campaign ") for line in lines):
            return lines
        return None

    @property
    def command(self) -> str | None:
        """The command of a ``$ campaign ...`` block."""
        if self.body and self.body[0].startswith("$ campaign"):
            return self.body[0][2:]
        return None


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        indent, language = opening.groups()
        end = number + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        marked = _MARK.match(lines[number - 1]) if number else None
        body = [line.removeprefix(indent) for line in lines[number + 1 : end]]
        found.append(
            Block(
                page,
                number + 1,
                language,
                indent,
                body,
                (marked.group(1), marked.group(2)) if marked else None,
            )
        )
        number = end + 1
    return found


def pages() -> list[Path]:
    """README.md and every page of the manual."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# ------------------------------------------------------------------------------ $ campaign


@contextmanager
def workspace() -> Iterator[Path]:
    """A fresh ``campaign init`` workspace in a temporary folder, as the current directory."""
    from campaigns.workspace import init_workspace

    before = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ws"
        init_workspace(path)
        os.chdir(path)
        try:
            yield path
        finally:
            os.chdir(before)


def run_command(command: str) -> tuple[int, list[str]]:
    """Run ``campaign ...`` in the current folder as a user would see it (not a terminal):
    its exit code and output lines."""
    import shlex

    from click.testing import CliRunner

    from cli.main import cli

    args = shlex.split(command)
    assert args[0] == "campaign"
    result = CliRunner().invoke(cli, args[1:], catch_exceptions=False)
    return result.exit_code, [line.rstrip() for line in result.output.splitlines()]


def run_shell(line: str) -> tuple[int, list[str]]:
    """Run a shell line (a pipe, a redirection) with this environment's ``campaign`` first on
    the PATH: its exit code and output lines."""
    import subprocess

    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", line],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` is ``expected``, where a line ``...`` stands for any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


# ------------------------------------------------------------------------------------ TOML


def _merge(base: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    """``part`` laid over ``base``; a table with a ``type`` (a source, a channel) replaces."""
    merged = dict(base)
    for key, value in part.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and "type" not in value:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def check_toml(block: Block) -> str | None:
    """Load a TOML block through the config schema, laid over the example config (a complete
    config alone); return the problem, or None."""
    from pydantic import ValidationError

    from campaigns.config.schema import Config

    try:
        part = tomllib.loads("\n".join(block.body))
    except tomllib.TOMLDecodeError as exc:
        return f"invalid TOML: {exc}"
    complete = "source" in part and "channels" in part
    base = {} if complete else tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    try:
        Config.model_validate({**_merge(base, part), "root": ROOT})
    except ValidationError as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------------------- the pages


@dataclass
class Finding:
    """A block whose example does not hold."""

    block: Block
    problem: str
    #: For a ``$ campaign`` block: the output the command prints now.
    actual: list[str] | None = None


def check_page(page: Path) -> list[Finding]:
    """Every block of ``page`` checked: commands run in one workspace, TOML validated."""
    findings = []
    shell = {"sh", "shell", "bash", "console"}
    runs = []
    for block in blocks(page):
        if block.mark is not None:
            continue
        if block.command is not None or (block.language in shell and block.shell_commands):
            runs.append(block)
        elif block.language == "toml":
            problem = check_toml(block)
            if problem:
                findings.append(Finding(block, problem))
        elif block.language in shell:
            findings.append(Finding(block, "a shell block that is neither run nor marked"))
    if runs:
        with workspace():
            for block in runs:
                if block.command is not None:
                    _code, actual = run_command(block.command)
                    if not matches(block.body[1:], actual):
                        findings.append(Finding(block, "the output differs", actual))
                    continue
                for command in block.shell_commands or []:
                    code, output = (
                        run_shell(command)
                        if re.search(r"[|&;<>]", command)
                        else run_command(command)
                    )
                    if code:
                        findings.append(
                            Finding(block, f"{command!r} failed: " + " / ".join(output[-3:]))
                        )
    return findings


def write_page(page: Path, findings: list[Finding]) -> None:
    """Put each differing ``$ campaign`` block's new output into the page."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for finding in sorted(findings, key=lambda f: -f.block.line):
        if finding.actual is None:
            continue
        block = finding.block
        start = block.line  # the line after the fence (0-based index of the first body line)
        end = start + len(block.body)
        new = [block.body[0], *finding.actual]
        lines[start:end] = [f"{block.indent}{line}" if line else line for line in new]
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    write = "--write" in argv
    chosen = [ROOT / a for a in argv if a != "--write"] or pages()
    failed = 0
    for page in chosen:
        findings = check_page(page)
        if write:
            write_page(page, findings)
            findings = [f for f in findings if f.actual is None]
        for finding in findings:
            failed += 1
            print(f"{finding.block.where}: {finding.problem}")
            if finding.actual is not None:
                print("\n".join(f"    {line}" for line in finding.actual))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
