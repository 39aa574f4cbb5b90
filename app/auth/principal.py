"""Who is calling: resolved once per request from a bearer token or an API key."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import g, request
from sqlalchemy import Select, bindparam, exists, select

from app import tenancy
from app.auth.secrets import digest
from app.auth.tokens import decode_access_token
from app.errors import Unauthorized
from app.extensions import db
from app.models import (
    AgencyMembership,
    AgencyRole,
    ApiKey,
    BrandMembership,
    BrandRole,
    RefreshToken,
)
from app.models.base import utcnow
from app.services.audit import Actor

API_KEY_PREFIX = "rk"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@tenancy.system_lookup(tenancy.SystemLookup.AUTHENTICATION)
def _access_statement() -> Select[Any]:
    # One round trip answers both questions a bearer token raises: the caller's agency role, and
    # whether the token's session still stands. A session is a refresh-token family; signing out,
    # a reused refresh token, a password change and removal from the agency revoke every link of
    # it, so "no link left unrevoked" means the session is over, whichever process revoked it. No
    # cache to invalidate: the database answers, in the query the request made anyway. Bound to
    # the token's agency, and run under its scope (RLS holds it there too).
    return select(
        select(AgencyMembership.role)
        .where(
            AgencyMembership.agency_id == bindparam("agency_id"),
            AgencyMembership.user_id == bindparam("user_id"),
        )
        .scalar_subquery()
        .label("agency_role"),
        exists()
        .where(
            RefreshToken.family_id == bindparam("session_id"),
            RefreshToken.agency_id == bindparam("agency_id"),
            RefreshToken.user_id == bindparam("user_id"),
            RefreshToken.revoked_at.is_(None),
        )
        .label("session_live"),
    )


# Looked up on every authenticated request: built once, so a request skips building the
# statement and its cache key (a tenth of the Python time of a read by id).
_ACCESS = _access_statement()


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" or "api_key"
    id: str
    agency_id: str
    agency_role: AgencyRole | None
    brand_roles: dict[str, BrandRole] = field(default_factory=dict)
    session_id: str | None = None

    @property
    def reaches_all_brands(self) -> bool:
        return self.agency_role in (AgencyRole.OWNER, AgencyRole.ADMIN)

    @property
    def reachable_brand_ids(self) -> frozenset[str] | None:
        return None if self.reaches_all_brands else frozenset(self.brand_roles)

    @property
    def user_id(self) -> str | None:
        return self.id if self.kind == "user" else None


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise Unauthorized("Send a bearer access token or an API key.")
    return principal


def current_actor() -> Actor:
    """The request's caller as the audit trail names it, with its address and request id: what
    views pass to the services that record what they do. Built once per request; on a public
    route nobody is known yet (`anonymous`) until the service names the person."""
    actor = g.get("actor")
    if actor is None:
        principal = g.get("principal")
        actor = Actor(
            type=principal.kind if principal else "anonymous",
            id=principal.id if principal else None,
            ip=request.remote_addr,
            request_id=g.get("request_id"),
        )
        g.actor = actor
    return actor


def authenticate_request() -> Principal:
    """Resolve the caller, enter its tenant scope and remember it for the request."""
    credential = _credential_from_request()
    if credential is None:
        raise Unauthorized("Send 'Authorization: Bearer <access token>' or 'X-API-Key: <key>'.")
    if credential.startswith(API_KEY_PREFIX + "_"):
        principal = _principal_from_api_key(credential)
    else:
        principal = _principal_from_access_token(credential)
    g.principal = principal
    g.pop("actor", None)  # named after the principal from now on
    return principal


def _credential_from_request() -> str | None:
    api_key = request.headers.get("X-API-Key")
    if api_key:
        return api_key.strip()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _principal_from_access_token(token: str) -> Principal:
    claims = decode_access_token(token)
    if claims is None:
        raise Unauthorized("The access token is invalid or expired; refresh it or sign in again.")
    tenancy.enter_agency(claims.agency_id)
    # Core, not the ORM: this runs on every request and needs no identity map.
    agency_role, session_live = (
        db.session.connection()
        .execute(
            _ACCESS,
            {
                "agency_id": claims.agency_id,
                "user_id": claims.user_id,
                "session_id": claims.session_id,
            },
        )
        .one()
    )
    if not session_live:
        raise Unauthorized("This session was signed out or revoked; sign in again.")
    brand_roles: dict[str, BrandRole] = {}
    if agency_role not in (AgencyRole.OWNER, AgencyRole.ADMIN):
        rows = db.session.execute(
            tenancy.scoped_select(
                BrandMembership, BrandMembership.brand_id, BrandMembership.role
            ).where(BrandMembership.user_id == claims.user_id)
        )
        brand_roles = {brand_id: BrandRole(role) for brand_id, role in rows}
    if agency_role is None and not brand_roles:
        raise Unauthorized("You are no longer a member of this agency.")
    principal = Principal(
        kind="user",
        id=claims.user_id,
        agency_id=claims.agency_id,
        agency_role=AgencyRole(agency_role) if agency_role else None,
        brand_roles=brand_roles,
        session_id=claims.session_id,
    )
    tenancy.enter_agency(claims.agency_id, principal.reachable_brand_ids)
    return principal


@tenancy.system_lookup(tenancy.SystemLookup.AUTHENTICATION)
def _principal_from_api_key(secret: str) -> Principal:
    with tenancy.system_scope():
        key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == digest(secret)))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("The API key is unknown or revoked.")
    restricted = key.brand_ids is not None
    principal = Principal(
        kind="api_key",
        id=key.id,
        agency_id=key.agency_id,
        agency_role=None if restricted else AgencyRole.ADMIN,
        brand_roles={b: BrandRole.MANAGER for b in (key.brand_ids or [])},
    )
    tenancy.enter_agency(key.agency_id, principal.reachable_brand_ids)
    _touch_last_used(key)
    return principal


def _touch_last_used(key: ApiKey) -> None:
    # Written at most once a minute per key, so reads stay reads.
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    db.session.execute(
        tenancy.scoped_update(ApiKey)
        .where(ApiKey.id == key.id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
