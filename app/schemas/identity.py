from __future__ import annotations

import marshmallow as ma

from app.schemas.common import Email, Id, Name, Password


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
    agency_role = ma.fields.String(required=True, allow_none=True)
    brand_roles = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={"description": "Brand id → brand role (empty for owners and admins)"},
    )


class MeSchema(ma.Schema):
    kind = ma.fields.String(required=True, metadata={"description": "`user` or `api_key`"})
    user = ma.fields.Nested(UserSchema, allow_none=True, required=True)
    api_key_id = ma.fields.String(allow_none=True, required=True)
    agency = ma.fields.Nested(AgencySchema, required=True)
    access = ma.fields.Nested(MembershipSummarySchema, required=True)
    agencies = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "Ids of every agency you can sign in to"},
    )
