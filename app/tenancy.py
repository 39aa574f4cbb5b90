"""The ONE place tenant scope is resolved and enforced.

Every read or write of tenant data goes through these helpers:

- `scoped_select(Model)`, `scoped_update(Model)` and `scoped_delete(Model)` filter by the
  caller's agency and, for brand-owned rows, by the brands the caller may reach. Nothing outside
  this module builds a statement on tenant data (tests/test_tenant_statements.py checks it).
- `current_agency()`: the caller's agency row.
- `get_or_404(Model, id)` and `get_brand_or_404(brand_id)`: another tenant's object, or one the
  caller may not reach, is a 404 and never a 403, so ids leak nothing.
- On PostgreSQL every transaction starts with `set_config('app.agency_id', …, true)`; Row-Level
  Security policies on every tenant table then filter again, so a bug in a view leaks nothing.
  `system_scope()` is the one audited way past RLS, for the few operations that must look across
  agencies before a tenant is known (login, API-key lookup, invitation acceptance, dispatchers).
- The functions that build such statements by hand are marked `@system_lookup(reason)`; the
  reasons, the whole list of exceptions, are `SystemLookup` below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from flask import g, has_app_context
from sqlalchemy import Delete, Select, Table, Update, delete, event, select, update
from sqlalchemy.orm import Session

from app import logs
from app.errors import NotFound
from app.extensions import db
from app.ids import looks_like_id

if TYPE_CHECKING:
    from app.models import Agency, Brand

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TenantScope:
    agency_id: str | None
    # None: every brand of the agency; otherwise the brand ids the caller may reach.
    brand_ids: frozenset[str] | None = None
    bypass_rls: bool = False


NO_SCOPE = TenantScope(agency_id=None)


def current_scope() -> TenantScope:
    if not has_app_context():
        return NO_SCOPE
    return g.get("tenant_scope", NO_SCOPE)


def set_scope(scope: TenantScope) -> None:
    """Make `scope` the current one, and apply it at once if a transaction is already open."""
    g.tenant_scope = scope
    logs.bind(agency_id=scope.agency_id)  # every log line from here on names the tenant
    session = db.session()
    # A transaction that a failed statement left inactive can only be rolled back: asking it
    # for its connection would raise and hide the original error (an IntegrityError that the
    # caller handles). The next transaction applies the scope when it begins.
    if session.in_transaction() and session.is_active:
        # Acquiring the connection may begin the transaction, which applies the scope itself.
        connection = session.connection()
        if session.info.get(_APPLIED) != _rls_settings(scope):
            _apply_to_connection(session, connection, scope)


@contextmanager
def system_scope() -> Iterator[None]:
    """Look across agencies for the length of the block (and its transaction).

    Used only where no tenant is known yet; everything done inside must be scoped by hand.
    """
    previous = current_scope()
    set_scope(TenantScope(agency_id=previous.agency_id, bypass_rls=True))
    try:
        yield
    finally:
        set_scope(previous)


class SystemLookup(StrEnum):
    """Why a function may build statements on tenant data by hand: the whole list of exceptions.

    Each is work that must look across agencies, or find its tenant, before a scope exists. It
    runs under `system_scope()` for that one lookup (or, for authentication, under the agency the
    credential names), returns or acts on ids, and re-enters the tenant before touching its data.
    """

    AUTHENTICATION = (
        "authentication: the credential (access token, API key, refresh token) names its agency; "
        "the caller's role and session are read before a scope can be built from them"
    )
    SIGN_IN = "sign-in: the agencies a person belongs to, across agencies, to choose one to enter"
    INVITATION = (
        "invitation acceptance: the token names the agency; no tenant is known before it is read"
    )
    SESSIONS = (
        "ending a person's sessions in every agency they belong to (a password change or reset)"
    )
    IDEMPOTENCY = (
        "Idempotency-Key records are keyed by the caller, across agencies (public routes such as "
        "sign-up have none), and replay only to the caller who made them"
    )
    SWEEP = (
        "periodic sweeps and maintenance commands over every agency (purges, the token-refresh "
        "sweep, key rotation): they read ids and re-enter each tenant before acting on its rows"
    )
    DISPATCHER = (
        "dispatchers claiming due work across agencies: the claim returns ids only, and each job "
        "re-enters its tenant before loading anything"
    )


def system_lookup(reason: SystemLookup) -> Callable[[F], F]:
    """Mark a function that builds statements on tenant data outside this module, and say why.

    A marker only (the function is returned as it is): tests/test_tenant_statements.py reads it,
    and fails on any statement on tenant data built elsewhere without it.
    """

    def mark(function: F) -> F:
        function.__system_lookup__ = reason  # type: ignore[attr-defined]
        return function

    return mark


def enter_agency(agency_id: str, brand_ids: frozenset[str] | None = None) -> None:
    """Scope to one agency: used by the authentication step and by jobs reloading a tenant."""
    set_scope(TenantScope(agency_id=agency_id, brand_ids=brand_ids))


# What the open transaction's connection was last told (see set_scope), in `session.info`.
_APPLIED = "relais_rls_settings"


def _rls_settings(scope: TenantScope) -> tuple[str, str]:
    # Only these reach the database; brand_ids are enforced by scoped_select.
    return (scope.agency_id or "", "on" if scope.bypass_rls else "off")


def _apply_to_connection(session: Session, connection: Any, scope: TenantScope) -> None:
    if connection.dialect.name != "postgresql":
        return
    settings = _rls_settings(scope)
    connection.exec_driver_sql(
        "SELECT set_config('app.agency_id', %s, true), set_config('app.rls_bypass', %s, true)",
        settings,
    )
    session.info[_APPLIED] = settings


@event.listens_for(Session, "after_begin")
def _scope_new_transaction(session: Session, _transaction: Any, connection: Any) -> None:
    _apply_to_connection(session, connection, current_scope())


@event.listens_for(Session, "after_transaction_end")
def _forget_applied_settings(session: Session, transaction: Any) -> None:
    # set_config(..., true) lasts until the transaction ends, and a savepoint rolled back
    # undoes the ones made inside it: from then on, assume nothing was applied.
    session.info.pop(_APPLIED, None)


def agency_wide(scope: TenantScope | None = None) -> TenantScope:
    """The caller's agency without the limit to the brands they reach.

    For yes-or-no questions about the agency as a whole that must not depend on the caller's
    brands (whether someone keeps any place in it); never for rows handed back to the caller.
    """
    return TenantScope(agency_id=_require_agency(scope or current_scope()))


def _require_agency(scope: TenantScope) -> str:
    if scope.agency_id is None:
        # A programming error, not a client error: tenant data asked for outside a tenant.
        raise RuntimeError("tenant data requested without a tenant scope")
    return scope.agency_id


def _tenant_conditions(target: Any, scope: TenantScope | None) -> list[Any]:
    """What keeps a statement on `target` (a model or a Table) to the caller's tenant."""
    scope = scope or current_scope()
    agency_id = _require_agency(scope)
    columns = target.c if isinstance(target, Table) else None
    if columns is not None:
        conditions = [columns.agency_id == agency_id]
        table_name, brand_column = target.name, columns.get("brand_id")
    else:
        conditions = [target.agency_id == agency_id]
        table_name = getattr(target, "__tablename__", "")
        brand_column = getattr(target, "brand_id", None)
    if scope.brand_ids is not None:
        if table_name == "brands":
            own_id = columns.id if columns is not None else target.id
            conditions.append(own_id.in_(scope.brand_ids))
        elif brand_column is not None:
            conditions.append(brand_column.in_(scope.brand_ids))
    return conditions


def scoped_select(model: type[T], *columns: Any, scope: TenantScope | None = None) -> Select[Any]:
    """`select(model)` limited to the caller's agency and reachable brands.

    `model` may also be a Table (a brand's export reads every table it owns). `scope` defaults to
    the current one; name it to build a statement to keep and reuse (a hot read then skips
    building it), keyed by the scope it was built for.
    """
    stmt = select(*columns) if columns else select(model)
    return stmt.where(*_tenant_conditions(model, scope))


def scoped_update(model: Any, *, scope: TenantScope | None = None) -> Update:
    """`update(model)` limited like `scoped_select`: add the row's own conditions and values."""
    return update(model).where(*_tenant_conditions(model, scope))


def scoped_delete(model: Any, *, scope: TenantScope | None = None) -> Delete:
    """`delete(model)` limited like `scoped_select`; `model` may also be a Table."""
    return delete(model).where(*_tenant_conditions(model, scope))


def current_agency() -> Agency:
    """The caller's agency. The row is its own tenant key (RLS on `agencies` filters on `id`)."""
    from app.models import Agency

    agency_id = _require_agency(current_scope())
    agency = db.session.get(Agency, agency_id)
    if agency is None:  # deleted while a token of it still lived
        raise NotFound(f"No agency with id '{agency_id}'.")
    return agency


def get_or_404(model: type[T], object_id: str, *, what: str | None = None) -> T:
    label = what or getattr(model, "__label__", model.__name__.lower())
    if not looks_like_id(object_id):
        raise NotFound(f"No {label} with id '{_printable(object_id)}'.")
    obj = db.session.scalars(scoped_select(model).where(model.id == object_id)).first()  # type: ignore[attr-defined]
    if obj is None:
        raise NotFound(f"No {label} with id '{object_id}'.")
    return obj


def get_brand_or_404(brand_id: str) -> Brand:
    from app.models import Brand

    return get_or_404(Brand, brand_id, what="brand")


def brand_id_or_404(brand_id: str) -> str:
    """As `get_brand_or_404`, for views that only need the brand to be there for the caller:
    one column read on the Core path, no Brand object (the busiest lists)."""
    from app.models import Brand

    if not looks_like_id(brand_id):
        raise NotFound(f"No brand with id '{_printable(brand_id)}'.")
    found = (
        db.session.connection()
        .execute(scoped_select(Brand, Brand.id).where(Brand.id == brand_id))
        .scalar()
    )
    if found is None:
        raise NotFound(f"No brand with id '{brand_id}'.")
    return found


def get_in_brand_or_404(
    model: type[T], brand_id: str, object_id: str, *, what: str, where: Sequence[Any] = ()
) -> T:
    """A brand-owned object, looked up under its brand (so `/brands/A/x/<id of B's x>` is 404).

    `where`: more conditions the object must meet for this caller (what a role may see); an
    object that fails them is a 404 like one that does not exist.
    """
    if not looks_like_id(object_id):
        raise NotFound(f"No {what} with id '{_printable(object_id)}'.")
    stmt = scoped_select(model).where(
        model.id == object_id,  # type: ignore[attr-defined]
        model.brand_id == brand_id,  # type: ignore[attr-defined]
        *where,
    )
    obj = db.session.scalars(stmt).first()
    if obj is None:
        raise NotFound(f"No {what} with id '{object_id}' in brand '{brand_id}'.")
    return obj


def _printable(value: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return cleaned[:64]
