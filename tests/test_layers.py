"""The layers import downwards only: services never import the API's schemas, and schemas never
import a service. What both need (field types, the values a column may hold) lives below them,
in `app/fields.py` and `app/models/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (`from app import schemas`
    counts as `app.schemas`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def reaches(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [("services", "app.schemas"), ("schemas", "app.services"), ("schemas", "app.api")],
)
def test_no_import_runs_back_up_the_layers(layer, forbidden):
    files = sorted((APP / layer).rglob("*.py"))
    assert len(files) > 5
    offenders = {
        str(path.relative_to(APP.parent)): bad
        for path in files
        if (bad := reaches(imported_modules(path), forbidden))
    }
    assert offenders == {}, f"app/{layer} must not import {forbidden}"


def test_the_import_scan_sees_imports_in_every_form(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import app.schemas.posts\n"
        "from app import schemas\n"
        "def f():\n"
        "    from app.schemas.common import Text\n",
        encoding="utf-8",
    )
    assert reaches(imported_modules(module), "app.schemas") == [
        "app.schemas",
        "app.schemas.common",
        "app.schemas.common.Text",
        "app.schemas.posts",
    ]
