"""The world the role, isolation and RLS tests act in, and the fresh objects they act on.

- `build_world()`: one agency with two brands and someone in every role (owner, admin, member
  with no brand, brand manager/editor/approver/client, an unrestricted and a brand-limited API
  key), a pending invitation, audit events. Made through the API, as a customer would.
- `World.path_param()`: a fresh object for a path parameter, from `PATH_PARAMS`, or else from
  the generic row factory (parameter name → id prefix in `app.ids.PREFIXES` → model → a row with
  every required column filled). A parameter neither knows fails with a message saying where
  to register a factory. Fresh objects are made straight in the database (tests/factories.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask

from app.ids import PREFIXES
from app.models import AgencyMembership
from tests.factories import NoFactory, TenantRows, in_brand, model_for_prefix, unique

ROLES = ("owner", "admin", "member", "manager", "editor", "approver", "client", "key", "key_brand")
# Roles that reach only the brands they are given (brand 0 of the world); the rest reach all.
BRAND_LIMITED_ROLES = ("member", "manager", "editor", "approver", "client", "key_brand")
# The prefix of the keys made as path parameters (never used to sign in), told apart from the
# world's own keys (tests/test_roles.py rebuilds the world when one of those changes).
FRESH_KEY_PREFIX = "rk_matrix"


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

    @contextmanager
    def rows(self, brand_id: str) -> Iterator[TenantRows]:
        with in_brand(self.app, self.agency_id, brand_id) as rows:
            yield rows

    def new_agency_member(self, brand_id: str) -> AgencyMembership:
        with self.rows(brand_id) as rows:
            return rows.agency_member()

    def new_brand_member(self, brand_id: str) -> str:
        with self.rows(brand_id) as rows:
            return rows.brand_member().id

    def new_api_key(self, brand_id: str) -> str:
        with self.rows(brand_id) as rows:
            return rows.api_key(prefix=FRESH_KEY_PREFIX).id

    def new_invitation(self, brand_id: str) -> str:
        with self.rows(brand_id) as rows:
            return rows.invitation().id

    def new_generic(self, model: type, brand_id: str, **overrides: Any) -> str:
        with self.rows(brand_id) as rows:
            return rows.generic(model, user_id=self.actors["owner"].user_id, **overrides).id

    def new_media(self, brand_id: str) -> str:
        """A media row with its file in storage (download and delete touch the file)."""
        with self.rows(brand_id) as rows:
            return rows.media(b"matrix media bytes", filename="matrix.png").id

    def new_account(self, brand_id: str) -> str:
        """A connected account of a real network (its connector is looked up by name)."""
        with self.rows(brand_id) as rows:
            account = rows.account(
                "linkedin", account_kind="member", handle="matrix", external_id=unique("urn")
            )
            return account.id

    def new_webhook_endpoint(self, brand_id: str) -> str:
        """An enabled endpoint of the agency (a loopback URL; the matrices send nothing)."""
        with self.rows(brand_id) as rows:
            return rows.webhook_endpoint("http://127.0.0.1:9/matrix").id

    def new_webhook_delivery(self, params: dict[str, str]) -> str:
        """A finished delivery of the endpoint in `params` (so it can be redelivered)."""
        with self.rows(params["brand_id"]) as rows:
            return rows.webhook_delivery(params["endpoint_id"]).id

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
        model = model_for_param(name, under_brand=path.startswith("/v1/brands/{brand_id}"))
        if model is None:
            raise NoFactory(
                f"No factory for path parameter {{{name}}} of {path}. Register one in "
                f"tests/world.py PATH_PARAMS, keyed by '{name}' (or by '{template_prefix}' "
                f"when the name means different things on different paths)."
            )
        try:
            return self.new_generic(model, brand_id)
        except Exception as exc:
            raise NoFactory(
                f"The generic factory could not make a {model.__name__} for {{{name}}} of "
                f"{path} ({type(exc).__name__}: {exc}). Register a factory in "
                f"tests/world.py PATH_PARAMS, keyed by '{name}'."
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


def model_for_param(name: str, *, under_brand: bool) -> type | None:
    """`post_id` → kind `post` → prefix `pst` → the model whose ids start with `pst_`."""
    stem = name.removesuffix("_id")
    kinds = [k for k in PREFIXES if k == stem or k.endswith("_" + stem)]
    models = [m for m in (model_for_prefix(PREFIXES[k]) for k in kinds) if m is not None]
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
    label = unique(name)
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
            "email": f"{unique('pending')}@example.com",
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
