"""A proper package: the wheel holds the five packages with their data (templates, the example
workspace) and the ``campaign`` command, nothing else; installing it prints no warning."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("campaigns", "cli", "segmentation", "store", "templates")


@pytest.mark.slow
def test_the_wheel_holds_the_packages_their_data_and_the_command(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("campaign-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        for module in (ROOT / package).rglob("*.py"):
            assert str(module.relative_to(ROOT)) in names, module
        assert f"{package}/py.typed" in names
    for template in (ROOT / "templates").glob("*.j2"):
        assert f"templates/{template.name}" in names
    assert "templates/workspace/config.toml" in names
    top = {name.split("/")[0] for name in names if not name.startswith("campaign-")}
    assert top == set(PACKAGES)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "campaign = cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_an_editable_install_prints_no_setuptools_warning(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    done = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "pip"), "install", "--no-deps", "-e", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    # pip repeats the build backend's warnings on stderr.
    assert "Warning" not in done.stderr, done.stderr
