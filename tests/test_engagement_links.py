"""Signed tokens (rotation, tampering) and link rewriting at render time, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.config.schema import TrackingConfig
from campaigns.engagement.links import Tracker
from campaigns.engagement.tokens import TOKEN_LENGTH, Signer, load_keys, message_ref
from campaigns.errors import ConfigError
from templates import make_environment

REF = message_ref("winback:C0042:2026-11-23")
OLD, NEW = b"old-key-0123456789abcdef", b"new-key-0123456789abcdef"


def test_a_token_reads_back_and_carries_no_customer_id() -> None:
    signer = Signer([NEW])
    token = signer.token(REF)
    assert len(token) == TOKEN_LENGTH
    assert "C0042" not in token
    assert signer.read(token) == REF


def test_after_rotation_old_tokens_verify_and_new_ones_use_the_new_key() -> None:
    old_token = Signer([OLD]).token(REF)
    rotated = Signer([NEW, OLD])
    assert rotated.read(old_token) == REF
    assert Signer([OLD]).read(rotated.token(REF)) is None
    assert Signer([NEW]).read(old_token) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: ("B" if t[0] != "B" else "C") + t[1:],
        lambda t: t[:20] + ("A" if t[20] != "A" else "B") + t[21:],
        lambda t: "!" * len(t),
        lambda t: "",
    ],
)
def test_a_changed_token_does_not_verify(mangle: object) -> None:
    token = Signer([NEW]).token(REF)
    assert Signer([NEW]).read(mangle(token)) is None  # type: ignore[operator]


def settings(**extra: object) -> TrackingConfig:
    return TrackingConfig(base_url="https://t.example.com/", **extra)  # type: ignore[arg-type]


def test_links_in_html_and_text_become_tracked_once_each_and_opt_outs_stay() -> None:
    tracker = Tracker(settings(), Signer([NEW]))
    body = (
        '<html><body><p><a class="b" href="https://shop.example/a?x=1&amp;y=2">A</a>'
        '<a href="https://shop.example/terms" data-no-track>terms</a>'
        '<a href="mailto:hi@shop.example">mail</a>'
        "<a href='https://shop.example/b'>B</a></p></body></html>"
    )
    text = "See https://shop.example/a?x=1&y=2. Or https://shop.example/c, thanks."
    tracked = tracker.rewrite(REF, text, body, "winback", None)
    assert tracked.links == [
        "https://shop.example/a?x=1&y=2",
        "https://shop.example/b",
        "https://shop.example/c",
    ]
    signer = Signer([NEW])
    token = signer.token(REF)
    first = f"https://t.example.com/c/0/{token}"
    assert f'<a class="b" href="{first}">A</a>' in (tracked.html or "")
    assert 'href="https://shop.example/terms" data-no-track' in (tracked.html or "")
    assert 'href="mailto:hi@shop.example"' in (tracked.html or "")
    assert tracked.text.startswith(f"See {first}. Or https://t.example.com/c/")
    assert tracked.text.endswith(", thanks.")
    pixel = f'<img src="https://t.example.com/o/{token}.gif"'
    assert (tracked.html or "").index(pixel) < (tracked.html or "").index("</body>")
    unsubscribe = f"https://t.example.com/u/{token}"
    assert tracked.headers == {
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_the_notrack_filter_keeps_a_url_and_leaves_no_mark(tmp_path: Path) -> None:
    (tmp_path / "t.txt.j2").write_text(
        "Terms: {{ 'https://shop.example/terms' | notrack }}\nShop: https://shop.example/\n"
    )
    env = make_environment(tmp_path)
    rendered = env.get_template("t.txt.j2").render()
    tracked = Tracker(settings(), Signer([NEW])).rewrite(REF, rendered, None, "c", None)
    assert tracked.text.startswith("Terms: https://shop.example/terms\nShop: https://t.example")
    assert "\u2063" not in tracked.text
    assert tracked.links == ["https://shop.example/"]


def test_utm_parameters_are_added_to_the_target_when_configured() -> None:
    tracker = Tracker(settings(utm=True), Signer([NEW]))
    tracked = tracker.rewrite(
        REF, "https://shop.example/a?utm_source=mine&x=1", None, "winback", "story"
    )
    assert tracked.links == [
        "https://shop.example/a?utm_source=mine&x=1&utm_medium=email&utm_campaign=winback"
        "&utm_content=story"
    ]


def test_a_missing_or_short_secret_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^tracking: the signing secret is missing: set the environment variable "
        r"CAMPAIGN_TRACKING_SECRET \(tracking.secret_env\), or name a file with "
        r"tracking.secret_file$",
    ):
        load_keys(settings(), tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"key #2 in the environment variable X is too short"):
        load_keys(settings(secret_env="X"), tmp_path, environ={"X": "a" * 20 + " short"})
    (tmp_path / "keys").write_text("new-key-0123456789abcdef\nold-key-0123456789abcdef\n")
    keys = load_keys(settings(secret_file=Path("keys")), tmp_path, environ={})
    assert keys == [NEW, OLD]
    with pytest.raises(ConfigError, match=r"tracking.secret_file: .*nope not found"):
        load_keys(settings(secret_file=Path("nope")), tmp_path, environ={})


def test_a_secret_in_the_config_file_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'secret' must not be written in config\.toml"):
        TrackingConfig(base_url="https://t.example.com", secret="x")  # type: ignore[call-arg]


# --- campaign track unsubscribes | bounces | complaints ------------------------------------------


def test_imported_unsubscribes_bounces_and_complaints_suppress_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner
    from sqlalchemy import text

    from cli.main import cli
    from store.engine import opened_store
    from tests.engagement_kit import ENV, tracking_config

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    config = tracking_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 8080)
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--at", "2026-11-23T12:00"]).exit_code == 0
    (tmp_path / "unsubscribes.csv").write_text(
        "customer_id,timestamp,topic\nC000001,2026-11-24T10:00,newsletter\n"
        "C000002,2026-11-24T10:00,\nC000003,2026-11-24T10:00,Not A Topic\n"
    )
    (tmp_path / "bounces.csv").write_text(
        "customer_id,timestamp,bounce,reason\nC000004,2026-11-24T10:00,hard,550 no such user\n"
        "C000005,2026-11-24T10:00,soft,452 mailbox full\nC000006,2026-11-24T10:00,maybe,\n"
    )
    (tmp_path / "complaints.csv").write_text("customer_id,timestamp\nC000007,2026-11-24T10:00\n")

    first = runner.invoke(cli, ["track", "unsubscribes", "unsubscribes.csv"])
    again = runner.invoke(cli, ["track", "unsubscribes", "unsubscribes.csv"])
    bounces = runner.invoke(cli, ["track", "bounces", "bounces.csv"])
    complaints = runner.invoke(cli, ["track", "complaints", "complaints.csv"])

    assert first.output == (
        "Imported 2 unsubscribes from unsubscribes.csv.\n1 row refused:\n"
        "  line 4: bad_topic: 'Not A Topic' is not a topic name\n"
    )
    assert again.output.startswith(
        "Imported 0 unsubscribes from unsubscribes.csv.\n"
        "2 unsubscribes seen before, counted as repeats, not stored again.\n"
    )
    assert bounces.output == (
        "Imported 2 bounces from bounces.csv.\n1 row refused:\n"
        "  line 4: bad_bounce: 'maybe' is not 'hard' or 'soft'\n"
    )
    assert complaints.output == "Imported 1 complaint from complaints.csv.\n"
    with opened_store(config.store.url, config.root) as engine, engine.connect() as connection:
        topics = connection.execute(
            text("SELECT customer_id, topic FROM topic_suppression ORDER BY customer_id")
        ).all()
        suppressed = connection.execute(text("SELECT customer_id, reason FROM suppression")).all()
        repeats = connection.execute(
            text("SELECT SUM(repeats) FROM engagement_event WHERE kind = 'unsubscribe'")
        ).scalar_one()
    assert [tuple(t) for t in topics] == [
        ("C000001", "newsletter"),
        ("C000002", "*"),
        ("C000007", "*"),
    ]
    assert [tuple(s) for s in suppressed] == [("C000004", "bounced: hard: 550 no such user")]
    assert repeats == 2


def test_check_refuses_a_missing_secret_when_tracking_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from cli.main import cli
    from tests.engagement_kit import tracking_config

    monkeypatch.delenv("TEST_TRACKING_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    tracking_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 8080)
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: tracking: the signing secret is missing: set the environment variable "
        "TEST_TRACKING_SECRET (tracking.secret_env), or name a file with tracking.secret_file\n"
    )
    run = CliRunner().invoke(cli, ["run", "--at", "2026-11-23T12:00"])
    assert run.exit_code == 1
    assert "the signing secret is missing" in run.output


def test_the_demo_workspace_makes_its_secrets_once_private_and_reuses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh `campaign init` workspace tracks links with no environment variable: the
    config names key files in the state folder and says create_secret."""
    from click.testing import CliRunner

    from campaigns.config import load_config
    from campaigns.engagement.tokens import webhook_secret
    from campaigns.workspace import init_workspace
    from cli.main import cli

    for name in ("CAMPAIGN_TRACKING_SECRET", "CAMPAIGN_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    config = load_config(workspace / "config.toml")
    assert config.tracking is not None
    assert config.tracking.create_secret
    keys_file = workspace / ".campaign" / "tracking-keys"
    hook_file = workspace / ".campaign" / "webhook-secret"
    assert not keys_file.exists()
    monkeypatch.chdir(workspace)
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    first = keys_file.read_bytes()
    for made in (keys_file, hook_file):
        assert made.stat().st_mode & 0o777 == 0o600
    keys = load_keys(config.tracking, config.root, environ={})
    assert keys == [first.strip()]
    assert len(keys[0]) == 43
    assert (
        webhook_secret(config.tracking, config.root, environ={}) == hook_file.read_bytes().strip()
    )
    assert keys[0] != hook_file.read_bytes().strip()
    # Used again, and by another process's config: the same keys, the files untouched.
    again = load_config(workspace / "config.toml")
    assert again.tracking is not None
    assert load_keys(again.tracking, again.root, environ={}) == keys
    assert keys_file.read_bytes() == first
    # No temporary file left behind (the store is there too: check opened it).
    assert sorted(
        p.name
        for p in (workspace / ".campaign").iterdir()
        if "secret" in p.name or "keys" in p.name
    ) == ["tracking-keys", "webhook-secret"]


def test_racing_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    tracking = settings(secret_file=Path("state/keys"), create_secret=True)
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: load_keys(tracking, tmp_path, environ={}), range(32)))
    assert len({tuple(k) for k in found}) == 1
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["keys"]


def test_a_named_key_file_that_is_missing_is_refused_without_create_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from campaigns.engagement.tokens import webhook_secret
    from campaigns.workspace import init_workspace
    from cli.main import cli

    with pytest.raises(
        ConfigError,
        match=r"^tracking.secret_file: .*/keys not found; write the signing key there .*"
        r"or set tracking.create_secret = true to have one made on first use$",
    ):
        load_keys(settings(secret_file=Path("keys")), tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"^tracking.webhook_secret_file: .*/hook not found"):
        webhook_secret(settings(webhook_secret_file=Path("hook")), tmp_path, environ={})
    assert not (tmp_path / "keys").exists()
    assert not (tmp_path / "hook").exists()
    with pytest.raises(ValueError, match=r"create_secret = true needs secret_file"):
        settings(secret_env="X", create_secret=True)
    # A production config: the demo's, without create_secret. check and run refuse it.
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    config = workspace / "config.toml"
    config.write_text(config.read_text().replace("create_secret = true\n", ""))
    monkeypatch.chdir(workspace)
    for command in (["check"], ["run", "--at", "2026-11-23T12:00"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1
        assert result.output.startswith(
            f"Error: tracking.secret_file: {workspace / '.campaign' / 'tracking-keys'} not found"
        ), result.output
    assert not (workspace / ".campaign" / "tracking-keys").exists()


def test_the_repository_ignores_the_state_folder_with_its_keys() -> None:
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    ignored = subprocess.run(
        ["git", "check-ignore", ".campaign/tracking-keys", ".campaign/webhook-secret"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == [".campaign/tracking-keys", ".campaign/webhook-secret"]
