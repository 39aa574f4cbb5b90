"""The suite keeps one way of doing each thing, so that new tests copy the right one:

- tenant rows are made by tests/factories.py only: no other module adds to a session, nor
  inserts into a tenant table (agencies and brands themselves come through the API);
- helpers are shared through modules meant for sharing (tests/factories.py, tests/world.py,
  tests/helpers.py, …), never by importing a test module, nor a private name of another
  module of the suite.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.tenant_data import tenant_models, tenant_tables

TESTS = Path(__file__).resolve().parent
FACTORIES = TESTS / "factories.py"
RAW_INSERT = re.compile(r"^\s*insert\s+into\s+(\w+)", re.IGNORECASE)


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield str(path.relative_to(TESTS.parent)), ast.parse(path.read_text(), str(path))


def _rows_made(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, code) of each place `tree` adds a row to a session or inserts into a tenant
    table (through the table object or in SQL text)."""
    models = {model.__name__ for model in tenant_models()}
    tables = {table.name for table in tenant_tables()} | {"agencies"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            raw = RAW_INSERT.match(node.value)
            if raw and raw.group(1).lower() in tables:
                yield node.lineno, node.value
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("add", "add_all")
            and ast.unparse(func.value).endswith("session")
        ):
            yield node.lineno, ast.unparse(node)
        table = None
        if isinstance(func, ast.Name) and func.id == "insert" and node.args:
            table = node.args[0]  # insert(Model.__table__)
        elif isinstance(func, ast.Attribute) and func.attr == "insert":
            table = func.value  # Model.__table__.insert()
        if table is not None and ast.unparse(table).removesuffix(".__table__") in models:
            yield node.lineno, ast.unparse(node)


def test_tenant_rows_are_made_by_the_factories_only():
    found = [
        f"  {name}:{line}: {code[:90]}"
        for name, tree in _modules()
        if name != str(FACTORIES.relative_to(TESTS.parent))
        for line, code in _rows_made(tree)
    ]
    assert not found, (
        "Tenant rows made outside tests/factories.py (use the `factory` fixture, or add the "
        "kind of row there):\n" + "\n".join(found)
    )


def test_the_guard_sees_rows_made_by_hand():
    made_by_hand = ast.parse(
        "db.session.add(post)\n"
        "rows.session.add_all(items)\n"
        "connection.execute(insert(SocialAccount.__table__).values(row))\n"
        "connection.execute(Post.__table__.insert().values(row))\n"
        "connection.execute(text('INSERT INTO posts (id) VALUES (1)'))\n"
        "connection.execute(LoginThrottle.__table__.insert().values(row))\n"  # not a tenant's
        "seen.add(post_id)\n"
    )
    assert sorted(line for line, _ in _rows_made(made_by_hand)) == [1, 2, 3, 4, 5]


def test_helpers_are_shared_through_helper_modules():
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests."):
                if node.module.rsplit(".", 1)[-1].startswith("test_"):
                    found.append(f"  {name}:{node.lineno}: imports the test module {node.module}")
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                if private:
                    found.append(f"  {name}:{node.lineno}: imports {private} from {node.module}")
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
                tests = [m for m in modules if m.rsplit(".", 1)[-1].startswith("test_")]
                if tests:
                    found.append(f"  {name}:{node.lineno}: imports the test module {tests}")
    assert not found, (
        "Move what is shared into a helper module under tests/ (public names):\n" + "\n".join(found)
    )
