"""Social accounts: what the API shows of them (never their credentials) and what it takes."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from app.fields import Name, Text
from app.models import AccountHealth, Network
from app.networks import DIRECT_NETWORKS, OAUTH_NETWORKS
from app.schemas.common import PageArgsSchema, page_schema

_COLOR = validate.Regexp(r"^#[0-9a-fA-F]{6}$", error="A colour is #RRGGBB.")
_NETWORKS = [n.value for n in Network]
_HEALTH = [h.value for h in AccountHealth]


def _secret(description: str, max_len: int) -> ma.fields.String:
    return Text(
        load_only=True,
        min_len=1,
        max_len=max_len,
        metadata={"description": description, "format": "password"},
    )


class AccountSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "acc_01JD5ZQ7R9X4M2B8C6N3P1T0VW"})
    brand_id = ma.fields.String(required=True)
    network = ma.fields.String(required=True, validate=validate.OneOf(_NETWORKS))
    external_id = ma.fields.String(
        required=True, metadata={"description": "The account's id on the network (DID, URN, …)"}
    )
    handle = ma.fields.String(required=True, metadata={"example": "@cafe@mastodon.social"})
    display_name = ma.fields.String(required=True, allow_none=True)
    instance_url = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Mastodon instance or Bluesky PDS; null elsewhere"},
    )
    account_kind = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "LinkedIn `member` or `organization`, Facebook `page`, …"},
    )
    scopes = ma.fields.List(ma.fields.String(), required=True, allow_none=True)
    health = ma.fields.String(
        required=True,
        validate=validate.OneOf(_HEALTH),
        metadata={
            "description": "`active`, `expiring` (reconnect soon), `needs_reconnect` "
            "(the network refused the credentials), `revoked` (disconnected)"
        },
    )
    token_expires_at = ma.fields.AwareDateTime(required=True, allow_none=True)
    last_refreshed_at = ma.fields.AwareDateTime(required=True, allow_none=True)
    last_error = ma.fields.String(required=True, allow_none=True)
    label = ma.fields.String(required=True, allow_none=True)
    color = ma.fields.String(required=True, allow_none=True)
    connected_by_user_id = ma.fields.String(required=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True, allow_none=True)
    disconnected_at = ma.fields.AwareDateTime(required=True, allow_none=True)

    @ma.pre_dump
    def _display(self, account: Any, **_kwargs: Any) -> dict[str, Any]:
        settings = account.settings or {}
        values = {name: getattr(account, name, None) for name in self.fields}
        values["label"] = settings.get("label")
        values["color"] = settings.get("color")
        return values


AccountPageSchema = page_schema(AccountSchema, "AccountPageSchema")


class AccountListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AccountSchema), required=True)


class AccountQueryArgsSchema(PageArgsSchema):
    network = ma.fields.String(validate=validate.OneOf(_NETWORKS))
    health = ma.fields.String(validate=validate.OneOf(_HEALTH))


class _DisplayFields(ma.Schema):
    label = Name(allow_none=True, max_len=100, metadata={"description": "Your name for it"})
    color = ma.fields.String(allow_none=True, validate=_COLOR)


class AccountUpdateSchema(_DisplayFields):
    pass


class ConnectSchema(ma.Schema):
    network = ma.fields.String(required=True, validate=validate.OneOf(OAUTH_NETWORKS))
    instance_url = Text(
        min_len=1,
        max_len=500,
        metadata={"description": "Mastodon only: the instance, e.g. https://mastodon.social"},
    )
    account_kind = ma.fields.String(
        validate=validate.OneOf(["member", "organization"]),
        metadata={
            "description": "LinkedIn only: a member profile (default) or the "
            "organization pages the member administers"
        },
    )


class AuthorizationSchema(ma.Schema):
    network = ma.fields.String(required=True, validate=validate.OneOf(OAUTH_NETWORKS))
    authorization_url = ma.fields.String(
        required=True, metadata={"description": "Send the person's browser here"}
    )
    expires_at = ma.fields.AwareDateTime(
        required=True, metadata={"description": "Finish before this instant"}
    )


class CallbackSchema(ma.Schema):
    state = Text(required=True, min_len=1, max_len=200)
    code = Text(
        min_len=1, max_len=2000, metadata={"description": "The `code` the network sent back"}
    )
    error = Text(
        min_len=1, max_len=200, metadata={"description": "The `error` the network sent back"}
    )


class DirectConnectSchema(_DisplayFields):
    network = ma.fields.String(required=True, validate=validate.OneOf(DIRECT_NETWORKS))
    handle = Text(
        min_len=1,
        max_len=253,
        metadata={"description": "Bluesky: the handle, e.g. cafe.bsky.social"},
    )
    app_password = _secret("Bluesky: an app password (used once, never stored)", 200)
    pds_url = Text(
        min_len=1,
        max_len=500,
        metadata={"description": "Bluesky: the PDS (default: the public service)"},
    )
    instance_url = Text(min_len=1, max_len=500, metadata={"description": "Mastodon: the instance"})
    access_token = _secret("Mastodon: a token from the instance's Development settings", 500)

    @ma.validates_schema
    def _per_network(self, data: dict[str, Any], **_kwargs: Any) -> None:
        required = {
            "bluesky": ("handle", "app_password"),
            "mastodon": ("instance_url", "access_token"),
        }.get(data.get("network", ""), ())
        missing = {name: ["Required for this network."] for name in required if not data.get(name)}
        if missing:
            raise ma.ValidationError(missing)


class ReconnectSchema(ma.Schema):
    handle = Text(
        min_len=1,
        max_len=253,
        metadata={"description": "Bluesky: the handle, if it changed"},
    )
    app_password = _secret("Bluesky: a new app password", 200)
    access_token = _secret(
        "Mastodon: a new token; without one, Mastodon reconnects through OAuth", 500
    )


class ReconnectResultSchema(ma.Schema):
    account = ma.fields.Nested(
        AccountSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The reconnected account, when credentials were given"},
    )
    authorization = ma.fields.Nested(
        AuthorizationSchema,
        required=True,
        allow_none=True,
        metadata={"description": "For OAuth networks: where to send the person's browser"},
    )
