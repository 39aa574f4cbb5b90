"""Tenant rows for tests, made straight in the database: the one way to make them.

Behaviour is tested through the API; the rows a test needs around it (a connected account, a
post in a given state, a stored media file, a fresh member or key) are made here, in the
agency's tenant scope as a job would make them (so RLS applies on PostgreSQL), with no audit
noise. Agencies and brands themselves are made through the API (`make_agency`, conftest).

- The `factory` fixture (a `RowFactory`): one row per call, committed, its id returned, as in
  `factory.account(owner, brand_id, "bluesky")` or
  `factory.post(owner, brand_id, [account_id], status="approved")`.
- `factory.in_brand(owner, brand_id)` (or `in_agency` for an agency's own rows), or
  `in_brand(app, agency_id, brand_id)` without the fixture: several rows in one transaction,
  as ORM objects (`TenantRows`).
- `generic_row()`: a row of any model, every required column filled plainly, for the tests that
  must cover every table (RLS, the role and isolation matrices).
- `insert_brand_rows()`: one row in every table holding a brand's data, every column filled,
  through the owner's connection (offboarding and export must cover tables added later).
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePath
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from app import tenancy
from app.extensions import db
from app.ids import PREFIXES, new_id
from app.models import (
    AgencyMembership,
    ApiKey,
    Base,
    BrandMembership,
    Delivery,
    IdempotencyRecord,
    Invitation,
    Media,
    Post,
    PostLabel,
    PostMedia,
    PostVariant,
    SocialAccount,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.models.base import utcnow
from app.security import crypto
from app.storage import get_storage, media_key

Row = TypeVar("Row")


class Tenant(Protocol):
    """Whatever names an agency: an `Actor` (conftest), a `World` (tests/world.py)."""

    agency_id: str


def unique(tag: str) -> str:
    """`tag` and a random suffix, for names, slugs and e-mails that must not collide."""
    return f"{tag}-{uuid.uuid4().hex[:10]}"


@contextmanager
def in_tenant(app: Flask, agency_id: str) -> Iterator[Session]:
    """An app context scoped to one agency, as a job would be; commits at the end."""
    with app.app_context():
        tenancy.enter_agency(agency_id)
        yield db.session
        db.session.commit()


@contextmanager
def in_brand(app: Flask, agency_id: str, brand_id: str) -> Iterator[TenantRows]:
    """Rows of one brand (and its agency) made in one transaction, committed at the end."""
    with in_tenant(app, agency_id) as session:
        yield TenantRows(session, agency_id, brand_id)


@contextmanager
def in_agency(app: Flask, agency_id: str) -> Iterator[TenantRows]:
    """Rows of one agency, none of a brand's (an agency may have no brand yet)."""
    with in_tenant(app, agency_id) as session:
        yield TenantRows(session, agency_id, None)


# -- typed rows -----------------------------------------------------------------------------------


@dataclass
class TenantRows:
    """Makes rows of one agency, and of one of its brands, in an open tenant session. Each row
    is flushed, so its id is known, and returned as the ORM object."""

    session: Session
    agency_id: str
    brand_id: str | None  # None: `in_agency`, for the agency's own rows only

    @property
    def scope(self) -> dict[str, str]:
        """The columns of a brand's row."""
        assert self.brand_id is not None, "a brand's row: make it in_brand(), not in_agency()"
        return {"agency_id": self.agency_id, "brand_id": self.brand_id}

    def _add(self, row: Row) -> Row:
        self.session.add(row)
        self.session.flush()
        return row

    def account(self, network: str = "mastodon", **fields: Any) -> SocialAccount:
        """A connected account of `network` (the connect flows are tested apart)."""
        values = {
            "external_id": uuid.uuid4().hex,
            "handle": f"{network}-{uuid.uuid4().hex[:6]}",
            **fields,
        }
        return self._add(SocialAccount(**self.scope, network=network, **values))

    def media(self, content: bytes | None = None, **fields: Any) -> Media:
        """A media item. With `content`, its file is put in storage too (the reads and deletes
        of its file need one); without, the row names a file that does not exist."""
        values: dict[str, Any] = {
            "filename": "picture.png",
            "content_type": "image/png",
            "size_bytes": 3,
            "sha256": "0" * 64,
            "storage_key": unique("no-such-file"),
            **fields,
        }
        if content is not None:
            values.setdefault("id", new_id(PREFIXES["media"]))
            name = values["id"] + PurePath(values["filename"]).suffix
            values["storage_key"] = media_key(self.agency_id, self.brand_id, name)
            get_storage().save(values["storage_key"], io.BytesIO(content))
            values.update(size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest())
        return self._add(Media(**self.scope, **values))

    def post(
        self,
        account_ids: Iterable[str] = (),
        *,
        media_ids: Iterable[str] = (),
        labels: Iterable[str] = (),
        variants: Mapping[str, Mapping[str, Any]] | None = None,
        **fields: Any,
    ) -> Post:
        """A post (a draft unless `status` says otherwise) going to `account_ids`, with
        `media_ids` in that order and `labels` as given. `variants` maps more target accounts
        to their own fields (`text`, `media_ids`)."""
        post = Post(**self.scope, **{"text": "Hello", **fields})
        post.label_rows = [PostLabel(**self.scope, label=label) for label in labels]
        post.media_rows = [
            PostMedia(**self.scope, position=position, media_id=media_id)
            for position, media_id in enumerate(media_ids)
        ]
        targets: dict[str, Mapping[str, Any]] = {account_id: {} for account_id in account_ids}
        targets.update(variants or {})
        post.variants = [
            PostVariant(**self.scope, account_id=account_id, **variant)
            for account_id, variant in targets.items()
        ]
        return self._add(post)

    def delivery(self, post: Post, account_id: str, **fields: Any) -> Delivery:
        """The delivery of `post` to one account (scheduled unless `status` says otherwise)."""
        return self._add(Delivery(**self.scope, post_id=post.id, account_id=account_id, **fields))

    def agency_member(self, role: str = "member") -> AgencyMembership:
        """A new person with a role in the agency (and none on any brand)."""
        user = self._add(
            User(email=f"{unique('staff')}@example.com", name="Fresh", password_hash="!")
        )
        return self._add(AgencyMembership(agency_id=self.agency_id, user_id=user.id, role=role))

    def brand_member(self, user_id: str | None = None, role: str = "editor") -> BrandMembership:
        """A role on this brand, for `user_id` or for a new agency member."""
        if user_id is None:
            user_id = self.agency_member().user_id
        return self._add(BrandMembership(**self.scope, user_id=user_id, role=role))

    def api_key(self, **fields: Any) -> ApiKey:
        """A key of the agency, unrestricted unless `brand_ids` says otherwise. Its secret is
        unknown (the key cannot sign in): for tests on the key as an object."""
        values = {
            "name": unique("Key"),
            "prefix": "rk_factory",
            "key_hash": uuid.uuid4().hex * 2,
            "brand_ids": None,
            **fields,
        }
        return self._add(ApiKey(agency_id=self.agency_id, **values))

    def invitation(self, **fields: Any) -> Invitation:
        """A pending invitation to this brand, as a client unless `brand_role` says otherwise.
        Its token is unknown: for tests on the invitation as an object."""
        values = {
            "brand_role": "client",
            "email": f"{unique('guest')}@example.com",
            "token_hash": uuid.uuid4().hex * 2,
            "expires_at": utcnow() + timedelta(days=1),
            **fields,
        }
        return self._add(Invitation(**self.scope, **values))

    def idempotency_record(self, **fields: Any) -> IdempotencyRecord:
        """What a create sent with an `Idempotency-Key` left: in flight (no status yet) unless
        `fields` say more. `scope` and `key` (hashed) name the caller and its key."""
        values = {
            "method": "POST",
            "path": "/v1/brands",
            "request_hash": "0" * 64,
            "expires_at": utcnow() + timedelta(hours=1),
            **fields,
        }
        return self._add(IdempotencyRecord(agency_id=self.agency_id, **values))

    def webhook_endpoint(
        self, url: str = "http://127.0.0.1:9/factory", **fields: Any
    ) -> WebhookEndpoint:
        """An enabled endpoint of the agency, taking every event of every brand unless `fields`
        say otherwise. Its secret is made here and not returned: read it back with
        `crypto.decrypt(endpoint.secrets_encrypted)["current"]` if a test must verify."""
        from app.services.webhook_endpoints import new_secret

        values = {
            "url": url,
            "secrets_encrypted": crypto.encrypt({"current": new_secret(), "previous": None}),
            "enabled": True,
            **fields,
        }
        return self._add(WebhookEndpoint(agency_id=self.agency_id, **values))

    def webhook_delivery(
        self, endpoint_id: str, event_type: str = "post.scheduled", **fields: Any
    ) -> WebhookDelivery:
        """An event of the agency (`{}` for its body) and its delivery to the endpoint, finished
        (`succeeded`, so it may be redelivered) unless `status` says otherwise."""
        event = self._add(WebhookEvent(agency_id=self.agency_id, type=event_type, payload="{}"))
        values = {"status": "succeeded", "attempts": 1, **fields}
        return self._add(
            WebhookDelivery(
                agency_id=self.agency_id,
                endpoint_id=endpoint_id,
                event_id=event.id,
                event_type=event_type,
                **values,
            )
        )

    def generic(self, model: type[Row], *, user_id: str, **overrides: Any) -> Row:
        """A row of any model in this brand (see `generic_row`)."""
        return generic_row(self.session, model, **self.scope, user_id=user_id, **overrides)


class RowFactory:
    """The `factory` fixture: one row per call, in its own committed transaction; returns ids."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    @contextmanager
    def in_brand(self, tenant: Tenant, brand_id: str) -> Iterator[TenantRows]:
        with in_brand(self.app, tenant.agency_id, brand_id) as rows:
            yield rows

    @contextmanager
    def in_agency(self, tenant: Tenant) -> Iterator[TenantRows]:
        with in_agency(self.app, tenant.agency_id) as rows:
            yield rows

    def account(
        self, tenant: Tenant, brand_id: str, network: str = "mastodon", **fields: Any
    ) -> str:
        with self.in_brand(tenant, brand_id) as rows:
            return rows.account(network, **fields).id

    def media(
        self, tenant: Tenant, brand_id: str, content: bytes | None = None, **fields: Any
    ) -> str:
        with self.in_brand(tenant, brand_id) as rows:
            return rows.media(content, **fields).id

    def post(
        self, tenant: Tenant, brand_id: str, account_ids: Iterable[str] = (), **fields: Any
    ) -> str:
        with self.in_brand(tenant, brand_id) as rows:
            return rows.post(account_ids, **fields).id

    def webhook_endpoint(
        self, tenant: Tenant, url: str = "http://127.0.0.1:9/factory", **fields: Any
    ) -> str:
        with self.in_agency(tenant) as rows:
            return rows.webhook_endpoint(url, **fields).id


# -- any model, from the metadata -----------------------------------------------------------------


class NoFactory(LookupError):
    """No factory knows how to make the row asked for."""


def model_for_table(table: sa.Table) -> type:
    for mapper in Base.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_
    raise NoFactory(f"no model maps table {table.name}")


def model_for_prefix(prefix: str) -> type | None:
    """The model whose ids start with `prefix_` (`pst` → `Post`), if any."""
    for mapper in Base.registry.mappers:
        id_column = mapper.local_table.c.get("id")
        default = getattr(id_column, "default", None) if id_column is not None else None
        if default is None or not callable(getattr(default, "arg", None)):
            continue
        if str(default.arg(None)).startswith(prefix + "_"):
            return mapper.class_
    return None


def generic_row(
    session: Session,
    model: type[Row],
    *,
    agency_id: str,
    brand_id: str,
    user_id: str,
    **overrides: Any,
) -> Row:
    """A row of `model` in the given agency and brand, every required column filled plainly.

    Enough for routes that only load the row (tenancy tests); a route that needs a meaningful
    row gets a typed factory (`TenantRows`) instead.
    """
    values: dict[str, Any] = dict(overrides)
    for column in model.__table__.columns:  # type: ignore[attr-defined]
        if column.name in values:
            continue
        if column.name == "agency_id":
            values[column.name] = agency_id
        elif column.name == "brand_id":
            values[column.name] = brand_id
        elif column.nullable or column.default is not None or column.server_default is not None:
            continue
        elif column.foreign_keys:
            target = next(iter(column.foreign_keys)).column.table
            if target.name == "users":
                values[column.name] = user_id
            else:
                parent = generic_row(
                    session,
                    model_for_table(target),
                    agency_id=agency_id,
                    brand_id=brand_id,
                    user_id=user_id,
                )
                values[column.name] = parent.id
        else:
            values[column.name] = plain_value(column)
    row = model(**values)
    session.add(row)
    session.flush()
    return row


def plain_value(column: sa.Column) -> Any:
    """A value any column of this type accepts (a string fits its length)."""
    kind = column.type
    if isinstance(kind, sa.Enum):
        return kind.enums[0]
    if isinstance(kind, (sa.Integer, sa.Numeric, sa.Float)):
        return 1
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.LargeBinary):
        return b"matrix"
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.DateTime) or isinstance(getattr(kind, "impl", None), sa.DateTime):
        return utcnow()
    length = getattr(kind, "length", None) or 40
    return unique("matrix")[:length]


# -- every brand table at once --------------------------------------------------------------------


def brand_tables() -> list[sa.Table]:
    """Every table holding a brand's rows (parents first), the brands table excluded."""
    return [t for t in Base.metadata.sorted_tables if "brand_id" in t.c and t.name != "brands"]


def insert_brand_rows(
    connection: sa.Connection, *, agency_id: str, brand_id: str, user_id: str
) -> dict[str, dict[str, Any]]:
    """One row in every brand table for this brand; returns table name → the row inserted.

    Unlike `generic_row`, every column is filled (secret ones too, so the export test can prove
    they are left out), through the owner's connection (`tests.helpers.owner_connection`).
    """
    rows: dict[str, dict[str, Any]] = {}
    for table in brand_tables():
        row: dict[str, Any] = {}
        for column in table.c:
            if column.name == "agency_id":
                row[column.name] = agency_id
            elif column.name == "brand_id":
                row[column.name] = brand_id
            elif (
                column.primary_key
                and isinstance(column.type, sa.String)
                and not column.foreign_keys
            ):
                row[column.name] = new_id("tst")
            elif column.foreign_keys:
                target = next(iter(column.foreign_keys)).column
                known = {"users": user_id, "brands": brand_id, "agencies": agency_id}
                parent = known.get(target.table.name) or rows.get(target.table.name, {}).get(
                    target.name
                )
                if parent is None and not column.nullable:
                    raise NotImplementedError(f"{table.name}.{column.name} → {target.table}")
                row[column.name] = parent
            elif column.default is not None or column.server_default is not None:
                continue
            else:
                row[column.name] = plain_value(column)
        connection.execute(sa.insert(table).values(row))
        rows[table.name] = row
    return rows


def count_brand_rows(connection: sa.Connection, brand_id: str) -> dict[str, int]:
    """Table name → how many rows of the brand it holds, for every brand table."""
    return {
        table.name: connection.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.brand_id == brand_id)
        ).scalar_one()
        for table in brand_tables()
    }
