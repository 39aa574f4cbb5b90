"""Statements on tenant data are built in app/tenancy.py, and nowhere else.

A statement (select, update, delete, insert, exists, `session.get`, or raw SQL in `text()`) that
names a tenant model (a table with `agency_id`, and `agencies` itself) outside app/tenancy.py is
an unscoped read or write waiting to leak: it must go through `tenancy.scoped_select`,
`scoped_update`, `scoped_delete` or `current_agency`. The only exceptions are the functions
marked `@tenancy.system_lookup(<reason>)`; the reasons are listed once, in
`tenancy.SystemLookup`.

Static: the AST of every module under app/ and workers/. A statement whose target the check
cannot name (`select(model)` over a variable, a bare Table) counts as a tenant statement, so a
new dynamic one fails too until it is scoped or marked.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from app import tenancy
from app.extensions import db
from app.models import Base, PostingSlot
from tests.helpers import owner_connection

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("app", "workers")
EXEMPT_FILES = {Path("app/tenancy.py")}
EXEMPT_FOLDERS = (Path("app/migrations"),)  # Alembic revisions work on tables, as the owner

STATEMENT_BUILDERS = frozenset({"select", "update", "delete", "insert", "exists"})
RAW_SQL = "text"
SESSION_READS = frozenset({"get", "query", "get_one"})


def _model_classes() -> dict[str, bool]:
    """Mapped class name → whether it is tenant data."""
    found: dict[str, bool] = {}
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        found[mapper.class_.__name__] = "agency_id" in table.c or table.name == "agencies"
    return found


MODELS = _model_classes()
TENANT_MODELS = frozenset(name for name, tenant in MODELS.items() if tenant)
TENANT_TABLES = {
    mapper.local_table.name: mapper.class_.__name__
    for mapper in Base.registry.mappers
    if mapper.class_.__name__ in TENANT_MODELS
}


@dataclass(frozen=True)
class Statement:
    path: str
    line: int
    function: str  # dotted, within the module ("<module>" at top level)
    names: frozenset[str]
    marked: bool  # inside a function marked @tenancy.system_lookup(...)

    @property
    def tenant(self) -> bool:
        # A target the check cannot name might be tenant data: counted as such.
        named_models = self.names & MODELS.keys()
        return bool(named_models & TENANT_MODELS) or not named_models

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}()"


def _sqlalchemy_builders(tree: ast.Module) -> dict[str, str]:
    """Local names bound to sqlalchemy's statement constructors (`insert as pg_insert` too)."""
    local: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in STATEMENT_BUILDERS or alias.name == RAW_SQL:
                    local[alias.asname or alias.name] = alias.name
    return local


def _tables_in_sql(call: ast.Call) -> set[str]:
    """The models whose tables a literal SQL string names."""
    sql = " ".join(
        n.value for n in ast.walk(call) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )
    words = set(re.findall(r"[a-z_]+", sql.lower()))
    return {model for table, model in TENANT_TABLES.items() if table in words}


def _is_system_lookup_marker(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute | ast.Name) and (
        getattr(target, "attr", None) == "system_lookup"
        or getattr(target, "id", None) == "system_lookup"
    )


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class _Finder(ast.NodeVisitor):
    def __init__(self, path: str, builders: dict[str, str]) -> None:
        self.path = path
        self.builders = builders
        self.stack: list[tuple[str, bool]] = []
        self.parents: dict[ast.AST, ast.AST] = {}
        self.found: list[Statement] = []

    def scan(self, tree: ast.Module) -> list[Statement]:
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.visit(tree)
        return self.found

    def _visit_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        marked = any(_is_system_lookup_marker(d) for d in node.decorator_list)
        self.stack.append((node.name, marked))
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_scope

    def _whole_expression(self, node: ast.AST) -> ast.AST:
        """The statement with its chained calls: `select(X).where(...).select_from(Y)`."""
        while True:
            parent = self.parents.get(node)
            chained = (isinstance(parent, ast.Attribute) and parent.value is node) or (
                isinstance(parent, ast.Call) and parent.func is node
            )
            if not chained:
                return node
            node = parent

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        built_by = self.builders.get(func.id) if isinstance(func, ast.Name) else None
        builds = built_by in STATEMENT_BUILDERS
        raw = built_by == RAW_SQL
        reads = (
            isinstance(func, ast.Attribute)
            and func.attr in SESSION_READS
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "session"
        )
        if raw:
            # Raw SQL on no tenant table (`SELECT 1`, the role check) is no tenant statement.
            names = _tables_in_sql(node)
            if names:
                self._found(node, names)
        elif builds or reads:
            self._found(node, _names_in(self._whole_expression(node) if builds else node))
        self.generic_visit(node)

    def _found(self, node: ast.Call, names: set[str]) -> None:
        self.found.append(
            Statement(
                path=self.path,
                line=node.lineno,
                function=".".join(name for name, _ in self.stack) or "<module>",
                names=frozenset(names),
                marked=any(marked for _, marked in self.stack),
            )
        )


def _modules() -> list[Path]:
    files = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in EXEMPT_FILES or any(relative.is_relative_to(f) for f in EXEMPT_FOLDERS):
                continue
            files.append(path)
    return files


def statements() -> list[Statement]:
    found: list[Statement] = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        relative = str(path.relative_to(ROOT))
        found += _Finder(relative, _sqlalchemy_builders(tree)).scan(tree)
    return found


def test_the_check_knows_the_tenant_models():
    # A guard on the guard: the model list comes from the metadata, not from a copy here.
    assert {"Brand", "Post", "Delivery", "ApiKey", "AuditEvent", "Agency"} <= TENANT_MODELS
    assert {"User", "LoginThrottle", "OutboundEmail"}.isdisjoint(TENANT_MODELS)


def test_the_check_finds_statements():
    # Were the finder broken, the test below would pass on anything.
    found = statements()
    assert len(found) > 20
    assert any(s.marked and s.tenant for s in found)
    assert any(not s.tenant for s in found)  # sign-in's `select(User)`, say


def test_statements_on_tenant_models_are_built_only_in_tenancy():
    unscoped = [s for s in statements() if s.tenant and not s.marked]
    assert not unscoped, (
        "Statements on tenant data built outside app/tenancy.py (use tenancy.scoped_select, "
        "scoped_update, scoped_delete or current_agency; or, for work that must look across "
        "agencies, mark the function @tenancy.system_lookup(SystemLookup.<reason>)):\n"
        + "\n".join(f"  {s}: {_targets(s)}" for s in unscoped)
    )


def _targets(statement: Statement) -> str:
    return ", ".join(sorted(statement.names & MODELS.keys())) or "a target the check cannot name"


def test_every_system_lookup_marker_is_still_needed():
    # A marked function that no longer builds a tenant statement keeps a licence it does not
    # use: the next edit could slip an unscoped statement in unnoticed.
    marked_with_statements = {(s.path, s.function) for s in statements() if s.marked and s.tenant}
    markers = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        relative = str(path.relative_to(ROOT))
        markers += _marked_functions(relative, tree)
    unused = [m for m in markers if not any(_within(m, s) for s in marked_with_statements)]
    assert not unused, f"@tenancy.system_lookup on functions without a tenant statement: {unused}"


def _marked_functions(path: str, tree: ast.Module) -> list[tuple[str, str]]:
    found = []

    def walk(node: ast.AST, prefix: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = [*prefix, child.name]
                if any(_is_system_lookup_marker(d) for d in child.decorator_list):
                    found.append((path, ".".join(name)))
                walk(child, name)
            else:
                walk(child, prefix)

    walk(tree, [])
    return found


def _within(marker: tuple[str, str], statement: tuple[str, str]) -> bool:
    path, function = marker
    return statement[0] == path and (
        statement[1] == function or statement[1].startswith(function + ".")
    )


@pytest.mark.parametrize("reason", list(tenancy.SystemLookup))
def test_every_reason_says_why(reason):
    assert len(reason.value) > 40, "say why this work must look across agencies"


def test_an_unscoped_statement_is_caught(tmp_path):
    source = (
        "from sqlalchemy import delete, select, text\n"
        "from app import tenancy\n"
        "def purge(brand_id):\n"
        "    return delete(Post).where(Post.brand_id == brand_id)\n"
        "def users():\n"
        "    return select(User)\n"
        "@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)\n"
        "def sweep():\n"
        "    return select(Post.id)\n"
        "def dynamic(model):\n"
        "    return select(model)\n"
        "def raw():\n"
        "    return text('DELETE FROM posts WHERE brand_id = :b')\n"
        "def ping():\n"
        "    return text('SELECT 1')\n"
    )
    tree = ast.parse(source)
    found = {s.function: s for s in _Finder("x.py", _sqlalchemy_builders(tree)).scan(tree)}
    assert found["purge"].tenant and not found["purge"].marked
    assert not found["users"].tenant
    assert found["sweep"].tenant and found["sweep"].marked
    assert found["dynamic"].tenant and not found["dynamic"].marked
    assert found["raw"].names == {"Post"} and found["raw"].tenant
    assert "ping" not in found


# -- the helpers themselves ----------------------------------------------------------------------


def _with_slots(client, owner):
    for brand_id in owner.brands:
        url = f"/v1/brands/{brand_id}/posting-slots"
        slots = {"slots": [{"weekday": "monday", "time": "09:00"}]}
        assert client.put(url, json=slots, headers=owner.headers).status_code == 200


def _slot_brands(database) -> list[str]:
    with owner_connection(database) as connection:
        return sorted(connection.execute(select(PostingSlot.brand_id)).scalars())


def test_scoped_writes_stay_in_the_callers_agency_and_brands(app, client, make_agency, database):
    owner = make_agency(brands=3)
    other = make_agency(brands=1)
    _with_slots(client, owner)
    _with_slots(client, other)
    reached, kept = owner.brands[0], owner.brands[1:]
    before = _slot_brands(database)
    with app.app_context():
        # A caller reaching one brand of the agency, deleting with no condition of their own.
        tenancy.enter_agency(owner.agency_id, frozenset({reached}))
        moved = db.session.execute(tenancy.scoped_update(PostingSlot).values(local_time="10:00"))
        assert moved.rowcount == 1
        deleted = db.session.execute(tenancy.scoped_delete(PostingSlot))
        assert deleted.rowcount == 1
        db.session.commit()
    after = _slot_brands(database)
    assert reached not in after
    assert sorted([*kept, *other.brands]) == after == sorted(b for b in before if b != reached)


def test_current_agency_is_the_callers(app, make_agency):
    owner = make_agency(brands=0)
    make_agency(brands=0)
    with app.app_context():
        tenancy.enter_agency(owner.agency_id)
        assert tenancy.current_agency().id == owner.agency_id
        tenancy.set_scope(tenancy.NO_SCOPE)
        with pytest.raises(RuntimeError, match="without a tenant scope"):
            tenancy.current_agency()
