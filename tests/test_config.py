"""Config loading: valid files load into typed values; each mistake gets one precise message."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.config import load_config
from campaigns.config.loader import key_lines
from campaigns.config.rules import ScheduleTrigger
from campaigns.config.schema import DemoSource
from campaigns.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
[source]
type = "demo"
customers = 300

[channels.export]
type = "file"

[campaigns.winback]
segments = ["Lapsed", 2]
trigger = { type = "schedule", cron = "0 10 * * *", timezone = "Europe/London" }
channel = "export"
template = "winback"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_repository_config_loads_and_matches_the_init_scaffold() -> None:
    config = load_config(REPO / "config.toml")
    assert isinstance(config.source, DemoSource)
    assert set(config.campaigns) == {
        "cart-reminder",
        "vip-thanks",
        "winback",
        "reorder-reminder",
        "newsletter",
    }
    scaffold = REPO / "templates" / "workspace" / "config.toml"
    assert scaffold.read_text() == (REPO / "config.toml").read_text()


def test_a_valid_config_gives_typed_frozen_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    campaign = config.campaigns["winback"]
    assert isinstance(campaign.trigger, ScheduleTrigger)
    assert campaign.trigger.timezone == "Europe/London"
    assert campaign.segments == ["Lapsed", 2]
    assert config.root == tmp_path.resolve()
    with pytest.raises(Exception, match="frozen"):
        campaign.priority = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "customers = 300",
            "customers = 0",
            "config.toml:3: source.customers: must be greater than 0, got 0",
        ),
        (
            'type = "file"',
            'type = "email"',
            "config.toml:6: channels.export.type: must be one of 'file', 'smtp', 'webhook', "
            "got 'email'",
        ),
        (
            'channel = "export"',
            'chanel = "export"',
            "config.toml:8: campaigns.winback.channel: is required\n"
            "{tmp}/config.toml:11: campaigns.winback.chanel: unknown key; did you mean 'channel'?",
        ),
        (
            'timezone = "Europe/London"',
            'timezone = "Europe/Lndon"',
            "config.toml:10: campaigns.winback.trigger.timezone: unknown timezone 'Europe/Lndon'; "
            "use an IANA name such as 'Europe/London'",
        ),
        (
            'cron = "0 10 * * *"',
            'cron = "0 10 * *"',
            "config.toml:10: campaigns.winback.trigger: cron must have 5 fields "
            "(minute hour day month weekday), got '0 10 * *'",
        ),
        (
            'cron = "0 10 * * *"',
            'cron = "0 25 * * *"',
            "config.toml:10: campaigns.winback.trigger: invalid cron expression '0 25 * * *': "
            "Error validating expression '25': the last value (25) is higher than the maximum "
            "value (23)",
        ),
        (
            'channel = "export"',
            'channel = "sms"',
            "config.toml:11: campaigns.winback.channel: unknown channel 'sms'; "
            "defined channels: 'export'",
        ),
        (
            'template = "winback"\n',
            "",
            "config.toml:8: campaigns.winback.template: is required",
        ),
        (
            "[campaigns.winback]",
            "[campaigns.Win Back]".replace(" ", "_"),
            "config.toml:8: campaigns.Win_Back: a campaign name must be lower-case letters, "
            "digits, '-' or '_'",
        ),
    ],
)
def test_each_mistake_names_file_line_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{tmp_path}/{message}".replace("{tmp}", str(tmp_path))


def test_several_mistakes_are_reported_together(tmp_path: Path) -> None:
    text = GOOD.replace("customers = 300", "customers = -1").replace('type = "file"', 'type = "x"')
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("source.customers: must be greater than 0, got -1")
    assert lines[1].endswith(
        "channels.export.type: must be one of 'file', 'smtp', 'webhook', got 'x'"
    )


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found; create one with 'campaign init"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"config.toml:2:5: invalid TOML: Invalid value$"):
        load_config(write(tmp_path, "[a]\nb = = 1\n"))


def test_key_lines_follow_tables_arrays_and_dotted_keys() -> None:
    text = '[a]\nx = 1\n[[b]]\ny = 2\n[[b]]\ny = 3\n[c.d]\n"q.r" = 4\ne.f = 5\n'
    lines = key_lines(text)
    assert lines[("a", "x")] == 2
    assert lines[("b", 0, "y")] == 4
    assert lines[("b", 1, "y")] == 6
    assert lines[("c", "d", "q.r")] == 8
    assert lines[("c", "d", "e", "f")] == 9
