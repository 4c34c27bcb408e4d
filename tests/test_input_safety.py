"""Issue 10, item 9: a channel directory stays in the workspace, transactions dated in the future
are quarantined, files with a byte-order mark or short rows are read or reported by line, and a
password never sits in ``[store] url``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from campaigns.config import load_config
from campaigns.config.schema import FilesSource, TableFile
from campaigns.errors import ConfigError, DataError
from campaigns.inputs import do_not_contact
from store.sources.files import load_files

CONFIG = """\
[store]
{store}

[source]
type = "demo"
customers = 300

[settings]
{settings}

[channels.export]
type = "file"
{channel}

[campaigns.winback]
segments = ["*"]
trigger = {{ type = "schedule", cron = "0 10 * * *" }}
channel = "export"
template = "winback"
"""


def write(tmp_path: Path, store: str = "", channel: str = "", settings: str = "") -> Path:
    path = tmp_path / "ws" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(CONFIG.format(store=store, channel=channel, settings=settings))
    return path


# ----------------------------------------------------------------------------- channel folders


@pytest.mark.parametrize("directory", ["../../x", "/tmp/campaign-elsewhere", "out/../../x"])
def test_a_channel_directory_outside_the_workspace_is_refused(
    tmp_path: Path, directory: str
) -> None:
    path = write(tmp_path, channel=f'directory = "{directory}"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}:13: channels.export.directory: {directory!r} is outside the workspace "
        f"({path.parent.resolve()}); write inside it, or set allow_outside = true in "
        "[channels.export]"
    )


def test_allow_outside_lets_a_channel_write_elsewhere(tmp_path: Path) -> None:
    path = write(tmp_path, channel='directory = "../shared-out"\nallow_outside = true')
    assert load_config(path).channels["export"].directory == Path("../shared-out")
    inside = write(tmp_path, channel='directory = "exports/today"')
    assert load_config(inside).channels["export"].directory == Path("exports/today")


# -------------------------------------------------------------------------------- store secrets


def test_a_password_in_the_store_url_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, store='url = "postgresql+psycopg://crm:hunter2@db.example/campaign"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}:2: store.url: must not hold a password (config.toml lives in git); give the "
        "password in PGPASSWORD or ~/.pgpass, or put the whole URL in an environment variable "
        'and name it with url_env = "VARIABLE"'
    )
    # A user name alone is fine: the password then comes from PGPASSWORD or ~/.pgpass.
    alone = write(tmp_path, store='url = "postgresql+psycopg://crm@db.example/campaign"')
    assert load_config(alone).store.url == "postgresql+psycopg://crm@db.example/campaign"


def test_url_env_reads_the_whole_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, store='url_env = "CAMPAIGN_STORE_URL"')
    monkeypatch.delenv("CAMPAIGN_STORE_URL", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}:2: store.url_env: names the environment variable CAMPAIGN_STORE_URL, which is "
        "not set"
    )
    secret = "postgresql+psycopg://crm:hunter2@db.example/campaign"
    monkeypatch.setenv("CAMPAIGN_STORE_URL", secret)
    assert load_config(path).store.url == secret
    both = write(tmp_path, store='url = "sqlite:///x.db"\nurl_env = "CAMPAIGN_STORE_URL"')
    with pytest.raises(ConfigError, match=r":2: store\.url: give either url or url_env, not both"):
        load_config(both)


def test_url_env_works_for_a_real_store_and_the_password_is_never_shown(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    # PostgreSQL: a password in the URL (the test server trusts local connections, so any
    # password opens it); SQLite has none.
    url = store_url.replace("://postgres@", "://postgres:not-in-git@")
    monkeypatch.setenv("CAMPAIGN_STORE_URL", url)
    path = write(tmp_path, store='url_env = "CAMPAIGN_STORE_URL"')
    assert load_config(path).store.url == url
    status = CliRunner().invoke(cli, ["status", "-c", str(path)])
    assert status.exit_code == 0, status.output
    assert "not-in-git" not in status.output
    shown = url.replace(":not-in-git@", ":***@")
    assert status.output.startswith(f"Store: {shown}\n")


# ------------------------------------------------------------------------ future-dated lines


def test_transactions_dated_in_the_future_are_quarantined(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(
        "customer_id,invoiced_at,unit_price\n"
        "C1,2026-11-01,10\n"
        "C1,2099-01-01,10\n"
        "C2,2026-12-03,5\n"
        "C2,2026-12-01,5\n"
    )
    source = FilesSource(
        type="files",
        transactions=TableFile(path=Path("tx.csv")),
        quarantine=tmp_path / "quarantine",
    )
    shop = load_files(source, tmp_path, loaded_at=datetime(2026, 12, 2, 12))
    # 2026-12-03 00:00 is inside a day of tolerance; 2099 is not.
    assert shop.quarantined == {"future_date": 1}
    assert len(shop.transactions) == 3
    quarantine = pd.read_csv(tmp_path / "quarantine" / "transactions.csv", dtype=str)
    assert quarantine[["line", "reason"]].values.tolist() == [["3", "future_date"]]


# ------------------------------------------------------------------------ BOM and short rows


def test_a_source_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_bytes(
        "\ufeffcustomer_id,invoiced_at,unit_price\nC1,2026-11-01,10\nC2\n".encode()
    )
    source = FilesSource(
        type="files",
        transactions=TableFile(path=Path("tx.csv")),
        quarantine=tmp_path / "quarantine",
    )
    shop = load_files(source, tmp_path, loaded_at=datetime(2026, 12, 2))
    assert shop.transactions["customer_id"].tolist() == ["C1"]
    # The short row is quarantined with its line, not an IndexError.
    assert shop.quarantined == {"bad_date": 1}
    quarantine = pd.read_csv(tmp_path / "quarantine" / "transactions.csv", dtype=str)
    assert quarantine[["line", "reason"]].values.tolist() == [["3", "bad_date"]]


def dnc_config(tmp_path: Path, content: bytes) -> Path:
    path = write(tmp_path, settings='do_not_contact = "dnc.csv"')
    (path.parent / "dnc.csv").write_bytes(content)
    return path


def test_a_do_not_contact_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    listed = "\ufeffcustomer_id,reason\nC000001,asked\nC000002,complaint\n".encode()
    config = load_config(dnc_config(tmp_path, listed))
    assert do_not_contact(config) == {"C000001", "C000002"}
    plain = load_config(dnc_config(tmp_path, "\ufeffcustomer_id\nC000003\n".encode()))
    assert do_not_contact(plain) == {"C000003"}


def test_a_short_row_in_the_do_not_contact_file_names_file_and_line(tmp_path: Path) -> None:
    listed = b"reason,customer_id\nasked,C000001\ncomplaint\n"
    path = dnc_config(tmp_path, listed)
    with pytest.raises(DataError) as caught:
        do_not_contact(load_config(path))
    assert str(caught.value) == (
        f"settings.do_not_contact: {path.parent / 'dnc.csv'}:3: no customer_id in this row "
        "(1 field, customer_id is field 2 of the header)"
    )
