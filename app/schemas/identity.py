from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from app.fields import Name
from app.models import AgencyRole, BrandRole
from app.schemas.common import Email, Id, Password

# What `Principal.kind` can be (app/auth/principal.py): a person or an agency API key.
PRINCIPAL_KINDS = ("user", "api_key")


class SignupSchema(ma.Schema):
    agency_name = Name(required=True)
    name = Name(required=True, metadata={"description": "Your name"})
    email = Email(required=True)
    password = Password(required=True)


class TokenRequestSchema(ma.Schema):
    email = Email(required=True)
    password = Password(required=True, min_len=1)
    agency_id = Id(
        "agy",
        metadata={"description": "Agency to act in; defaults to your first agency"},
    )


class RefreshRequestSchema(ma.Schema):
    refresh_token = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=200)
    )


class PasswordChangeSchema(ma.Schema):
    current_password = Password(required=True, min_len=1)
    new_password = Password(required=True)


class TokenPairSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(
        required=True, metadata={"description": "Seconds the access token stays valid"}
    )
    refresh_token = ma.fields.String(
        required=True, metadata={"description": "Single-use; each refresh returns a new one"}
    )
    agency_id = ma.fields.String(required=True)


class UserSchema(ma.Schema):
    id = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class AgencySchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    plan = ma.fields.String(required=True)
    billing_status = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class AgencyUpdateSchema(ma.Schema):
    name = Name()


class SignupResultSchema(ma.Schema):
    agency = ma.fields.Nested(AgencySchema, required=True)
    user = ma.fields.Nested(UserSchema, required=True)
    tokens = ma.fields.Nested(TokenPairSchema, required=True)


class MembershipSummarySchema(ma.Schema):
    agency_id = ma.fields.String(required=True)
    agency_role = ma.fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf([r.value for r in AgencyRole]),
        metadata={"description": "Agency role; null when access comes from brand roles only"},
    )
    brand_roles = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(validate=validate.OneOf([r.value for r in BrandRole])),
        required=True,
        metadata={"description": "Brand id → brand role (empty for owners and admins)"},
    )


class MeSchema(ma.Schema):
    kind = ma.fields.String(
        required=True,
        validate=validate.OneOf(PRINCIPAL_KINDS),
        metadata={"description": "`user`: a person with a token; `api_key`: an agency API key"},
    )
    user = ma.fields.Nested(
        UserSchema,
        allow_none=True,
        required=True,
        metadata={"description": "The person signed in; null for an API key"},
    )
    api_key_id = ma.fields.String(allow_none=True, required=True)
    agency = ma.fields.Nested(AgencySchema, required=True)
    access = ma.fields.Nested(MembershipSummarySchema, required=True)
    agencies = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "Ids of every agency you can sign in to"},
    )


class AcceptedSchema(ma.Schema):
    detail = ma.fields.String(required=True, metadata={"description": "What happens next"})


class PasswordResetRequestSchema(ma.Schema):
    email = Email(required=True)


class TokenField(ma.fields.String):
    """The secret of a link mailed by Relais (`?token=` in the link)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            load_only=True,
            validate=ma.validate.Length(min=1, max=200),
            metadata={"description": "The `token` of the link in the e-mail"},
            **kwargs,
        )


class PasswordResetConfirmSchema(ma.Schema):
    token = TokenField(required=True)
    password = Password(required=True)


class SignupVerifySchema(ma.Schema):
    token = TokenField(required=True)
    password = Password(required=True, min_len=1)
