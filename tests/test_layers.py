"""The layers import downwards only: ``store`` is the bottom, ``templates`` and ``segmentation``
sit on it, ``campaigns`` on those, ``cli`` on top. A module of a lower layer that imports an upper
one (even inside a function) fails this test, with the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Each package and the packages it must never import.
FORBIDDEN = {
    "store": ("campaigns", "templates", "segmentation", "cli"),
    "templates": ("campaigns", "segmentation", "cli"),
    "segmentation": ("campaigns", "templates", "cli"),
    "campaigns": ("cli",),
}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_never_imports_a_layer_above_it(package: str) -> None:
    above = FORBIDDEN[package]
    breaches = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imports(path)
        if module.split(".")[0] in above
    ]
    assert not breaches, "\n".join(breaches)


def test_the_check_sees_a_breach(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from campaigns.errors import ConfigError\n")
    assert imports(module) == [(2, "campaigns.errors")]
