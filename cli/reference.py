"""The manual's command reference (``docs/cli.md``), generated from ``--help`` so it cannot drift.

python -m cli.reference              # print it
python -m cli.reference docs/cli.md  # rewrite the block between the markers in place
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.main import cli

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"


def _help(command: click.Command, name: str) -> str:
    context = click.Context(
        command,
        info_name=name,
        terminal_width=100,
        max_content_width=100,
        help_option_names=["-h", "--help"],
    )
    return command.get_help(context)


def reference_markdown() -> str:
    """Every command's help text, as Markdown."""
    parts = [f"```\n{_help(cli, 'campaign')}\n```"]
    group_context = click.Context(cli, info_name="campaign")
    for name in cli.list_commands(group_context):
        command = cli.get_command(group_context, name)
        assert command is not None
        parts.append(f"### `campaign {name}`\n\n```\n{_help(command, f'campaign {name}')}\n```")
        if isinstance(command, click.Group):
            sub_context = click.Context(command, info_name=name, parent=group_context)
            for sub in command.list_commands(sub_context):
                subcommand = command.get_command(sub_context, sub)
                assert subcommand is not None
                full = f"campaign {name} {sub}"
                parts.append(f"### `{full}`\n\n```\n{_help(subcommand, full)}\n```")
    return "\n\n".join(parts)


def replace_block(text: str, block: str) -> str:
    """``text`` with the reference block between the markers replaced by ``block``."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str]) -> None:
    if not argv:
        print(reference_markdown())
        return
    path = Path(argv[0])
    path.write_text(replace_block(path.read_text(encoding="utf-8"), reference_markdown()))


if __name__ == "__main__":
    main(sys.argv[1:])
