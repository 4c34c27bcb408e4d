"""Every HTML report the tool writes opens in a real browser: it renders, its plots load (no
broken image), and the page logs no error. Screenshots are kept in the test's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from tests.browser import Browser

AT = "2026-11-23T12:00"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo workspace of 1,500 customers after one run and a simulated experiment."""
    folder = tmp_path_factory.mktemp("reports") / "ws"
    assert invoke("init", str(folder)).exit_code == 0
    config = folder / "config.toml"
    config.write_text(config.read_text().replace("customers = 5000", "customers = 1500"))
    for args in (("run", "--at", AT), ("experiment", "simulate", "winback")):
        done = invoke(*args, "-c", str(config))
        assert done.exit_code == 0, done.output
    return config


def assert_renders(browser: Browser, page: Path, title: str) -> None:
    shown = browser.open(page, screenshot=page.with_suffix(".png"))
    assert shown.ok, shown.problems()
    assert shown.images >= 1, "a report with no plot"
    assert title.casefold() in shown.title.casefold()
    assert shown.screenshot is not None
    assert shown.screenshot.stat().st_size > 10_000  # a page with content, not a blank one


@pytest.mark.slow
def test_the_segment_report_renders(browser: Browser, workspace: Path) -> None:
    page = workspace.parent / "segments.html"
    done = invoke("segment", "report", "-c", str(workspace), "--html", str(page))
    assert done.exit_code == 0, done.output
    assert_renders(browser, page, "Segment")


@pytest.mark.slow
def test_the_experiment_report_renders(browser: Browser, workspace: Path) -> None:
    page = workspace.parent / "winback.html"
    done = invoke("report", "winback", "-c", str(workspace), "--html", str(page))
    assert done.exit_code == 0, done.output
    assert_renders(browser, page, "winback")


@pytest.mark.slow
@pytest.mark.parametrize(
    "train",
    [("propensity",), ("uplift", "--simulate", "discount")],
    ids=["propensity", "uplift"],
)
def test_the_model_reports_render(
    browser: Browser, workspace: Path, train: tuple[str, ...]
) -> None:
    trained = invoke("model", "train", *train, "-c", str(workspace))
    assert trained.exit_code == 0, trained.output
    page = workspace.parent / f"{train[0]}.html"
    done = invoke("model", "report", train[0], "-c", str(workspace), "--html", str(page))
    assert done.exit_code == 0, done.output
    assert_renders(browser, page, train[0])


@pytest.mark.slow
def test_the_recommendation_evaluation_renders(browser: Browser, workspace: Path) -> None:
    page = workspace.parent / "evaluation.html"
    done = invoke(
        "recommend", "evaluate", "-c", str(workspace), "--splits", "2", "--resamples", "100",
        "--html", str(page),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert_renders(browser, page, "Recommendation evaluation")


@pytest.mark.slow
def test_a_broken_page_is_caught(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><head><title>broken</title></head><body><p>text</p>"
        '<img src="data:image/png;base64,AAAA"><script>console.error("boom")</script>'
        "</body></html>",
        encoding="utf-8",
    )
    shown = browser.open(page)
    assert not shown.ok
    assert shown.console_errors == ["boom"]
    assert shown.broken_images == ["data:image/png;base64,AAAA"]
    assert shown.text == "text"
