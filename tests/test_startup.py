"""Start-up stays instant: the command line imports no heavy library until a command needs it,
and ``campaign status`` reads the store without SQLAlchemy or pandas.

(How long start-up takes is measured by ``python -m benchmarks.startup``, not here.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli

ROOT = Path(__file__).resolve().parents[1]

#: Not imported by ``import cli.main`` (so not by ``campaign --help``).
HEAVY = (
    "pandas",
    "numpy",
    "scipy",
    "sklearn",
    "matplotlib",
    "statsmodels",
    "sqlalchemy",
    "sqlmodel",
    "pyarrow",
    "psycopg",
    "jinja2",
    "rich",
    "pydantic",
    "apscheduler",
)

#: Not imported by ``campaign status`` (it needs the config models, cron and tables).
NOT_FOR_STATUS = ("pandas", "numpy", "scipy", "sklearn", "matplotlib", "sqlalchemy", "pyarrow")


def loaded_after(code: str) -> list[str]:
    """The heavy top-level modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    loaded = loaded_after("import cli.main")
    assert [m for m in HEAVY if m in loaded] == []


def test_help_loads_no_heavy_library_and_cuts_no_description() -> None:
    loaded = loaded_after(
        "from cli.main import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert [m for m in HEAVY if m in loaded] == []
    shown = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert shown.exit_code == 0
    commands = shown.output.split("Commands:\n")[1]
    assert "..." not in commands
    # The whole first sentence, wrapped over lines.
    assert (
        "status Show the store: customers, segments, the last runs, the outbox and the next "
        "fire times." in " ".join(commands.split())
    )


def test_status_reads_the_store_without_sqlalchemy_or_pandas(tmp_path: Path) -> None:
    from tests.delivery_kit import make_workspace

    campaigns = (
        '[campaigns.hello]\nsegments = ["*"]\ntrigger = { type = "schedule", cron = "0 8 * * *" }\n'
        'channel = "export"\ntemplate = "newsletter"\n'
    )
    channels = '[channels.export]\ntype = "file"\nformat = "csv"\ndirectory = "out"\n'
    config = make_workspace(tmp_path / "ws", channels, campaigns, customers=30)
    ran = CliRunner().invoke(cli, ["run", "-c", str(config), "--at", "2026-11-23T12:00"])
    assert ran.exit_code == 0, ran.output
    loaded = loaded_after(
        "from cli.main import cli\n"
        f"try:\n    cli(['status', '-c', {str(config)!r}, '--at', '2026-11-23T12:00'])\n"
        "except SystemExit as done:\n    assert not done.code, done.code"
    )
    assert [m for m in NOT_FOR_STATUS if m in loaded] == []


def test_the_model_kinds_the_command_line_offers_are_the_library_s() -> None:
    from campaigns.personalization.models_store import KINDS
    from cli.model import KINDS as OFFERED

    assert OFFERED == KINDS
