"""Test support for the tenant-isolation, role-matrix and RLS tests.

- `spec_operations()`: every operation of the generated OpenAPI spec, so the matrices grow with
  the API by themselves.
- `build_world()`: one agency with two brands and someone in every role (owner, admin, member
  with no brand, brand manager/editor/approver/client, an unrestricted and a brand-limited API
  key), a pending invitation, audit events.
- `World.path_param()`: a fresh object for a path parameter, from `PATH_PARAMS`, or else from
  the generic row factory (parameter name → id prefix in `app.ids.PREFIXES` → model → a row with
  every required column filled). A parameter neither knows fails with a message saying where
  to register a factory.
- `example_body()`: a valid-looking request body from the operation's JSON schema, ids taken
  from the world (so B's body names A's objects in the isolation matrix).
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app import tenancy
from app.extensions import db
from app.ids import PREFIXES
from app.models import AgencyMembership, ApiKey, Base, BrandMembership, Invitation, User
from app.models.base import utcnow

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
ROLES = ("owner", "admin", "member", "manager", "editor", "approver", "client", "key", "key_brand")
# Roles that reach only the brands they are given (brand 0 of the world); the rest reach all.
BRAND_LIMITED_ROLES = ("member", "manager", "editor", "approver", "client", "key_brand")
ID_PATTERN = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")
_ID_PREFIX_IN_PATTERN = re.compile(r"^\^([a-z]{2,5})_")


# -- the spec -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def public(self) -> bool:
        return self.spec.get("security") == []

    @property
    def brand_scoped(self) -> bool:
        return self.path.startswith("/v1/brands/{brand_id}")

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        return content.get("application/json", {}).get("schema")

    def query_params(self) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == "query"]


@functools.cache
def openapi_spec() -> dict[str, Any]:
    from app.openapi_dump import generate

    return generate()


def spec_operations() -> list[Operation]:
    spec = openapi_spec()
    return [
        Operation(method.upper(), path, op)
        for path, ops in sorted(spec["paths"].items())
        for method, op in ops.items()
        if method in HTTP_METHODS
    ]


# -- bodies ---------------------------------------------------------------------------------------

IdSource = Callable[[str, str], str]  # (id prefix, field name) -> an id


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = openapi_spec()["components"]["schemas"][name]
    return schema


def _unique(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


# Values a field's name calls for, when its schema alone cannot tell (an IANA zone, say).
FIELD_HINTS: dict[str, Callable[[], Any]] = {
    "timezone": lambda: "Europe/Paris",
    "slug": lambda: _unique("matrix"),
    "password": lambda: "matrix password 0123456789",
    "email": lambda: f"{_unique('matrix')}@example.com",
    "primary_color": lambda: "#112233",
    "secondary_color": lambda: "#445566",
    "time": lambda: "09:00",  # a posting slot's local HH:MM
    "logo_url": lambda: f"https://example.com/{_unique('matrix')}.png",
    "link": lambda: f"https://example.com/{_unique('matrix')}",
    # A webhook endpoint's URL: the suite's outbound guard lets only loopback targets through.
    # Nothing listens on port 9 (discard), and no test sends the matrices' deliveries.
    "url": lambda: f"http://127.0.0.1:9/{_unique('matrix')}",
}


def example_value(name: str, schema: dict[str, Any], ids: IdSource) -> Any:
    schema = _resolve(schema)
    if name in FIELD_HINTS:
        return FIELD_HINTS[name]()
    if "anyOf" in schema:  # OpenAPI 3.1's "this, or null": take "this"
        schema = next(_resolve(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "enum" in schema:
        # The last value: for roles, the least powerful one (member, client).
        return schema["enum"][-1]
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1's nullable field: ["array", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        return example_body(schema, ids)
    if kind == "array":
        return [example_value(name.removesuffix("s"), schema.get("items", {}), ids)]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return float(max(schema.get("minimum", 1), 1))
    if kind == "boolean":
        return True
    prefix = _ID_PREFIX_IN_PATTERN.match(schema.get("pattern", ""))
    if prefix:
        return ids(prefix.group(1), name)
    fmt = schema.get("format")
    if fmt == "email":
        return f"{_unique('matrix')}@example.com"
    if fmt in ("url", "uri"):
        return f"https://example.com/{_unique('matrix')}.png"
    if fmt == "date-time":
        return (utcnow() + timedelta(days=1)).isoformat()
    value = _unique("Matrix")
    return value[: schema.get("maxLength", len(value))]


def example_body(schema: dict[str, Any], ids: IdSource) -> dict[str, Any]:
    """Every writable property, with a value its schema (and name) accepts. A body of several
    forms (`oneOf`) takes the form with the most properties (a brand invitation, say)."""
    schema = _resolve(schema)
    if "oneOf" in schema:
        forms = [_resolve(form) for form in schema["oneOf"]]
        schema = max(forms, key=lambda form: len(form.get("properties", {})))
    return {
        name: example_value(name, prop, ids)
        for name, prop in schema.get("properties", {}).items()
        if not _resolve(prop).get("readOnly")
    }


# -- talking to the database directly --------------------------------------------------------------


@contextmanager
def in_tenant(app: Flask, agency_id: str) -> Iterator[Any]:
    """An app context scoped to one agency, as a job would be; commits at the end."""
    with app.app_context():
        tenancy.enter_agency(agency_id)
        yield db.session
        db.session.commit()


def tenant_tables() -> list[sa.Table]:
    return [t for t in Base.metadata.sorted_tables if "agency_id" in t.c]


def tenant_models() -> list[type]:
    """Every mapped class owning rows of an agency (`agencies` itself is keyed by its id)."""
    return [
        mapper.class_
        for mapper in Base.registry.mappers
        if "agency_id" in mapper.local_table.c or mapper.local_table.name == "agencies"
    ]


def snapshot(owner_url: str, agency_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the agency owns, read past RLS (as the migration owner), for before/after."""
    volatile = {"last_used_at"}  # a key's use is not a change of the tenant's data
    engine = create_engine(owner_url, poolclass=NullPool)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in [*tenant_tables(), Base.metadata.tables["agencies"]]:
            column = table.c.agency_id if "agency_id" in table.c else table.c.id
            rows = conn.execute(sa.select(table).where(column == agency_id)).mappings()
            out[table.name] = sorted(
                ({k: v for k, v in row.items() if k not in volatile} for row in rows),
                key=repr,
            )
    engine.dispose()
    return out


def telltales(rows: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Strings that identify an agency's data: ids, names, slugs, e-mails, key prefixes."""
    found: set[str] = set()
    for table_rows in rows.values():
        for row in table_rows:
            for column, value in row.items():
                if not isinstance(value, str):
                    continue
                if ID_PATTERN.match(value) or (
                    column in ("name", "slug", "email", "prefix") and len(value) >= 8
                ):
                    found.add(value)
    return found


# -- generic rows ---------------------------------------------------------------------------------


class NoFactory(LookupError):
    pass


def _model_for_table(table: sa.Table) -> type:
    for mapper in Base.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_
    raise NoFactory(f"no model maps table {table.name}")


def _model_for_prefix(prefix: str) -> type | None:
    for mapper in Base.registry.mappers:
        id_column = mapper.local_table.c.get("id")
        default = getattr(id_column, "default", None) if id_column is not None else None
        if default is None or not callable(getattr(default, "arg", None)):
            continue
        if str(default.arg(None)).startswith(prefix + "_"):
            return mapper.class_
    return None


def generic_row(
    session: Any, model: type, *, agency_id: str, brand_id: str, user_id: str, **overrides: Any
) -> Any:
    """A row of `model` in the given agency and brand, every required column filled plainly.

    Enough for routes that only load the row (tenancy tests); a route that needs a meaningful
    row gets its own factory in `PATH_PARAMS`.
    """
    values: dict[str, Any] = dict(overrides)
    for column in model.__table__.columns:
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
                    _model_for_table(target),
                    agency_id=agency_id,
                    brand_id=brand_id,
                    user_id=user_id,
                )
                values[column.name] = parent.id
        else:
            values[column.name] = _plain_value(column)
    row = model(**values)
    session.add(row)
    session.flush()
    return row


def _plain_value(column: sa.Column) -> Any:
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
    return _unique("matrix")[:length]


# -- the world ------------------------------------------------------------------------------------


@dataclass
class World:
    """One agency, filled with people in every role and objects they can reach."""

    app: Flask
    name: str
    agency_id: str
    brands: list[str]
    actors: dict[str, Any]  # role -> Actor (conftest), see ROLES
    invitation_id: str

    def headers(self, role: str) -> dict[str, str]:
        return self.actors[role].headers

    # Fresh objects, made straight in the database (fast, and no audit noise).

    def new_agency_member(self, brand_id: str) -> AgencyMembership:
        with in_tenant(self.app, self.agency_id) as session:
            user = User(email=f"{_unique('staff')}@example.com", name="Fresh", password_hash="!")
            session.add(user)
            session.flush()
            membership = AgencyMembership(agency_id=self.agency_id, user_id=user.id, role="member")
            session.add(membership)
        return membership

    def new_brand_member(self, brand_id: str) -> str:
        staff = self.new_agency_member(brand_id)
        with in_tenant(self.app, self.agency_id) as session:
            membership = BrandMembership(
                agency_id=self.agency_id, brand_id=brand_id, user_id=staff.user_id, role="editor"
            )
            session.add(membership)
        return membership.id

    def new_api_key(self, brand_id: str) -> str:
        with in_tenant(self.app, self.agency_id) as session:
            key = ApiKey(
                agency_id=self.agency_id,
                name=_unique("Key"),
                prefix="rk_matrix",
                key_hash=uuid.uuid4().hex * 2,
                brand_ids=None,
            )
            session.add(key)
        return key.id

    def new_invitation(self, brand_id: str) -> str:
        with in_tenant(self.app, self.agency_id) as session:
            invitation = Invitation(
                agency_id=self.agency_id,
                brand_id=brand_id,
                brand_role="client",
                email=f"{_unique('guest')}@example.com",
                token_hash=uuid.uuid4().hex * 2,
                expires_at=utcnow() + timedelta(days=1),
            )
            session.add(invitation)
        return invitation.id

    def new_generic(self, model: type, brand_id: str, **overrides: Any) -> str:
        owner_id = self.actors["owner"].user_id
        with in_tenant(self.app, self.agency_id) as session:
            row = generic_row(
                session,
                model,
                agency_id=self.agency_id,
                brand_id=brand_id,
                user_id=owner_id,
                **overrides,
            )
        return row.id

    def new_media(self, brand_id: str) -> str:
        """A media row with its file in storage (download and delete touch the file)."""
        from app.ids import new_id
        from app.models import Media
        from app.storage import get_storage
        from app.storage.base import media_key

        media_id = new_id(PREFIXES["media"])
        content = b"matrix media bytes"
        with in_tenant(self.app, self.agency_id):
            key = media_key(self.agency_id, brand_id, media_id + ".png")
            get_storage().save(key, io.BytesIO(content))
        return self.new_generic(
            Media,
            brand_id,
            id=media_id,
            storage_key=key,
            filename="matrix.png",
            content_type="image/png",
            size_bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )

    def new_account(self, brand_id: str) -> str:
        """A connected account of a real network (its connector is looked up by name)."""
        from app.models import SocialAccount

        return self.new_generic(
            SocialAccount,
            brand_id,
            network="linkedin",
            account_kind="member",
            handle="matrix",
            external_id=_unique("urn"),
        )

    def new_webhook_endpoint(self, brand_id: str) -> str:
        """An enabled endpoint of the agency (loopback URL; nothing is sent in the matrices)."""
        from app.models import WebhookEndpoint
        from app.security import crypto
        from app.services.webhooks import new_secret

        with in_tenant(self.app, self.agency_id) as session:
            endpoint = WebhookEndpoint(
                agency_id=self.agency_id,
                url="http://127.0.0.1:9/matrix",
                secrets_encrypted=crypto.encrypt({"current": new_secret(), "previous": None}),
                enabled=True,
            )
            session.add(endpoint)
        return endpoint.id

    def new_webhook_delivery(self, params: dict[str, str]) -> str:
        """A finished delivery of the endpoint in `params` (so it can be redelivered)."""
        from app.models import WebhookDelivery, WebhookEvent

        with in_tenant(self.app, self.agency_id) as session:
            event = WebhookEvent(agency_id=self.agency_id, type="post.scheduled", payload="{}")
            session.add(event)
            session.flush()
            delivery = WebhookDelivery(
                agency_id=self.agency_id,
                endpoint_id=params["endpoint_id"],
                event_id=event.id,
                event_type=event.type,
                status="succeeded",
                attempts=1,
            )
            session.add(delivery)
        return delivery.id

    def new_post_target(self, params: dict[str, str]) -> str:
        """An account of the brand that the post in `params` goes to."""
        from app.models import PostVariant

        account_id = self.new_account(params["brand_id"])
        self.new_generic(
            PostVariant, params["brand_id"], post_id=params["post_id"], account_id=account_id
        )
        return account_id

    # Ids for path parameters and body fields.

    def path_param(self, path: str, name: str, params: dict[str, str]) -> str:
        """A fresh object for `{name}` in `path` (see `PATH_PARAMS`).

        `params` holds the target brand (`brand_id`) and the parameters resolved before this one.
        """
        brand_id = params["brand_id"]
        template_prefix = path[: path.index("{" + name + "}") + len(name) + 2]
        factory = PATH_PARAMS.get(template_prefix) or PATH_PARAMS.get(name)
        if factory is not None:
            return factory(self, params)
        model = _model_for_param(name, under_brand=path.startswith("/v1/brands/{brand_id}"))
        if model is None:
            raise NoFactory(
                f"No factory for path parameter {{{name}}} of {path}. Register one in "
                f"tests/tenants.py PATH_PARAMS, keyed by '{name}' (or by '{template_prefix}' "
                f"when the name means different things on different paths)."
            )
        try:
            return self.new_generic(model, brand_id)
        except Exception as exc:
            raise NoFactory(
                f"The generic factory could not make a {model.__name__} for {{{name}}} of "
                f"{path} ({type(exc).__name__}: {exc}). Register a factory in "
                f"tests/tenants.py PATH_PARAMS, keyed by '{name}'."
            ) from exc

    def id_for(self, prefix: str, field_name: str, brand_id: str) -> str:
        """An id of the kind `prefix` names, for a body field or a query parameter."""
        if prefix == PREFIXES["agency"]:
            return self.agency_id
        if prefix == PREFIXES["brand"]:
            return brand_id
        if prefix == PREFIXES["user"]:
            return self.new_agency_member(brand_id).user_id
        kind = next((k for k, p in PREFIXES.items() if p == prefix), None)
        if kind is None:
            raise NoFactory(f"No id kind uses the prefix '{prefix}' (field {field_name}).")
        return self.path_param(f"/{{{kind}_id}}", f"{kind}_id", {"brand_id": brand_id})


def _model_for_param(name: str, *, under_brand: bool) -> type | None:
    """`post_id` → kind `post` → prefix `pst` → the model whose ids start with `pst_`."""
    stem = name.removesuffix("_id")
    kinds = [k for k in PREFIXES if k == stem or k.endswith("_" + stem)]
    models = [m for m in (_model_for_prefix(PREFIXES[k]) for k in kinds) if m is not None]
    if under_brand and len(models) > 1:
        models = [m for m in models if "brand_id" in m.__table__.c]
    return models[0] if len(models) == 1 else None


# Path parameters the generic factory cannot guess (ambiguous names) or should not (objects
# whose routes need a meaningful row). Keyed by the parameter name, or by the path template up
# to the parameter when one name means different things on different paths. A factory gets the
# world and the parameters resolved so far (`brand_id` first: the brand to make things in).
PATH_PARAMS: dict[str, Callable[[World, dict[str, str]], str]] = {
    "brand_id": lambda world, p: p["brand_id"],
    "/v1/agency/members/{membership_id}": lambda world, p: (
        world.new_agency_member(p["brand_id"]).id
    ),
    "/v1/brands/{brand_id}/members/{membership_id}": lambda w, p: w.new_brand_member(p["brand_id"]),
    "key_id": lambda world, p: world.new_api_key(p["brand_id"]),
    "invitation_id": lambda world, p: world.new_invitation(p["brand_id"]),
    "media_id": lambda world, p: world.new_media(p["brand_id"]),
    "account_id": lambda world, p: world.new_account(p["brand_id"]),
    # A signed link is a capability: whoever holds a valid one gets the file, by design (see
    # tests/test_media.py for signing, expiry and agency binding). The matrices send a made-up
    # one, which must be a plain 404.
    "/v1/media-files/{token}": lambda world, p: "made-up-capability",
    # The account must be one the post goes to (else DELETE …/variants/{account_id} is a 404).
    "/v1/brands/{brand_id}/posts/{post_id}/variants/{account_id}": World.new_post_target,
    "endpoint_id": lambda world, p: world.new_webhook_endpoint(p["brand_id"]),
    # `delivery_id` names a post's delivery elsewhere: keyed by the path.
    "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}": World.new_webhook_delivery,
}


def build_world(
    client: Any, make_agency: Callable, invite_user: Callable, name: str, **brand_fields: Any
) -> World:
    """An agency named `name-<random>` with brands 0 and 1 and someone in every role.

    Brand staff (manager, editor, approver) are agency members with a role on brand 0; the
    client is an outsider invited to brand 0; `key_brand` is a key limited to brand 0.
    """
    label = _unique(name)
    owner = make_agency(label, brands=2, **brand_fields)
    brand0 = owner.brands[0]
    actors: dict[str, Any] = {"owner": owner}
    actors["admin"] = invite_user(owner, agency_role="admin")
    actors["member"] = invite_user(owner, agency_role="member")
    for role in ("manager", "editor", "approver"):
        person = invite_user(owner, agency_role="member")
        added = client.post(
            f"/v1/brands/{brand0}/members",
            json={"user_id": person.user_id, "role": role},
            headers=owner.headers,
        )
        assert added.status_code == 201, added.get_json()
        actors[role] = person
    actors["client"] = invite_user(owner, brand_id=brand0, brand_role="client")
    for role, brand_ids in (("key", None), ("key_brand", [brand0])):
        body: dict[str, Any] = {"name": f"{label} {role}"}
        if brand_ids:
            body["brand_ids"] = brand_ids
        created = client.post("/v1/api-keys", json=body, headers=owner.headers)
        assert created.status_code == 201, created.get_json()
        actors[role] = type(owner)(token=created.get_json()["key"], agency_id=owner.agency_id)
    invitation = client.post(
        "/v1/invitations",
        json={
            "email": f"{_unique('pending')}@example.com",
            "brand_id": brand0,
            "brand_role": "client",
        },
        headers=owner.headers,
    )
    assert invitation.status_code == 201, invitation.get_json()
    return World(
        app=client.application,
        name=label,
        agency_id=owner.agency_id,
        brands=list(owner.brands),
        actors=actors,
        invitation_id=invitation.get_json()["id"],
    )


# -- requests -------------------------------------------------------------------------------------


@dataclass
class Call:
    op: Operation
    url: str
    body: dict[str, Any] | None
    sent_ids: set[str]
    # The ids the body and query name (a subset of sent_ids).
    body_ids: set[str] = field(default_factory=set)

    def send(self, client: Any, headers: dict[str, str]) -> Any:
        return client.open(self.url, method=self.op.method, json=self.body, headers=headers)

    @property
    def names_ids_in_body(self) -> bool:
        return any(i in repr(self.body) for i in self.sent_ids)


def prepare_call(op: Operation, world: World, brand_id: str) -> Call:
    """The operation on `world`'s objects (fresh ones for path parameters) in brand `brand_id`."""
    sent: set[str] = set()
    body_ids: set[str] = set()
    # One object per kind in a body, so its fields agree (a variant's account is a target).
    by_prefix: dict[str, str] = {}

    def ids(prefix: str, field_name: str) -> str:
        if prefix not in by_prefix:
            by_prefix[prefix] = world.id_for(prefix, field_name, brand_id)
        value = by_prefix[prefix]
        sent.add(value)
        body_ids.add(value)
        return value

    url = op.path
    params = {"brand_id": brand_id}
    for name in op.path_params:
        value = world.path_param(op.path, name, params)
        params[name] = value
        sent.add(value)
        url = url.replace("{" + name + "}", value)
    query = []
    for param in op.query_params():
        prefix = _ID_PREFIX_IN_PATTERN.match(param.get("schema", {}).get("pattern", ""))
        if prefix:
            query.append(f"{param['name']}={ids(prefix.group(1), param['name'])}")
        elif param.get("required"):
            value = example_value(param["name"], param["schema"], ids)
            # Encoded: a "+" in an offset would otherwise arrive as a space.
            query.append(f"{param['name']}={quote(str(value), safe='')}")
    if query:
        url += "?" + "&".join(query)
    schema = op.body_schema()
    body = example_body(schema, ids) if schema is not None else None
    return Call(op=op, url=url, body=body, sent_ids=sent, body_ids=body_ids)


def swap_ids(call: Call, replacement: Callable[[str], str], only: set[str] | None = None) -> Call:
    """The same call with the ids it names (or `only` those) replaced, to compare with ids
    that never existed."""
    mapping = {i: replacement(i) for i in (call.sent_ids if only is None else only)}

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return mapping.get(value, value)
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    url = call.url
    for old, new in mapping.items():
        url = url.replace(old, new)
    kept = call.sent_ids - set(mapping)
    return Call(
        op=call.op,
        url=url,
        body=swap(call.body),
        sent_ids=kept | set(mapping.values()),
        body_ids={mapping.get(i, i) for i in call.body_ids},
    )


def never_existed(some_id: str) -> str:
    """An id of the same kind that no row has."""
    from app.ids import new_id

    return new_id(some_id.split("_", 1)[0])


def response_text(response: Any) -> str:
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return headers + "\n" + response.get_data(as_text=True)
