from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from app.fields import Name, Text
from app.models import AgencyRole, BrandRole
from app.schemas.common import (
    Email,
    Id,
    OneOfSchema,
    PageArgsSchema,
    Password,
    page_schema,
)


class AgencyMemberSchema(ma.Schema):
    id = ma.fields.String(required=True)
    user_id = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    role = ma.fields.String(required=True, validate=validate.OneOf([r.value for r in AgencyRole]))
    created_at = ma.fields.AwareDateTime(required=True)


class AgencyMemberUpdateSchema(ma.Schema):
    role = ma.fields.String(required=True, validate=validate.OneOf([r.value for r in AgencyRole]))


AgencyMemberPageSchema = page_schema(AgencyMemberSchema, "AgencyMemberPageSchema")


class ApiKeySchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    prefix = ma.fields.String(
        required=True, metadata={"description": "First characters, to tell keys apart"}
    )
    brand_ids = ma.fields.List(ma.fields.String(), allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    last_used_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    revoked_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = ma.fields.String(
        required=True, metadata={"description": "The secret; shown this once and never again"}
    )


class ApiKeyCreateSchema(ma.Schema):
    name = Name(required=True)
    brand_ids = ma.fields.List(
        Id("brd"),
        allow_none=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Limit the key to these brands; omit or null for every brand"},
    )


ApiKeyPageSchema = page_schema(ApiKeySchema, "ApiKeyPageSchema")


INVITATION_STATUSES = ("pending", "accepted", "revoked", "expired")


class InvitationSchema(ma.Schema):
    id = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    agency_role = ma.fields.String(
        allow_none=True, required=True, validate=validate.OneOf([r.value for r in AgencyRole])
    )
    brand_id = ma.fields.String(allow_none=True, required=True)
    brand_role = ma.fields.String(
        allow_none=True, required=True, validate=validate.OneOf([r.value for r in BrandRole])
    )
    status = ma.fields.String(required=True, validate=validate.OneOf(INVITATION_STATUSES))
    expires_at = ma.fields.AwareDateTime(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class AgencyInvitationCreateSchema(ma.Schema):
    email = Email(required=True)
    agency_role = ma.fields.String(
        required=True,
        validate=validate.OneOf([r.value for r in AgencyRole]),
        metadata={"description": "Invite to the agency with this role"},
    )


class BrandInvitationCreateSchema(ma.Schema):
    email = Email(required=True)
    brand_id = Id("brd", required=True, metadata={"description": "Invite to this brand"})
    brand_role = ma.fields.String(
        required=True,
        validate=validate.OneOf([r.value for r in BrandRole]),
        metadata={"description": "With this role on the brand"},
    )


class InvitationCreateSchema(OneOfSchema):
    """To the agency (`agency_role`) or to one brand (`brand_id` and `brand_role`)."""

    ALTERNATIVES = (AgencyInvitationCreateSchema, BrandInvitationCreateSchema)


class InvitationAcceptSchema(ma.Schema):
    token = ma.fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=200)
    )
    name = Name(metadata={"description": "Required for a new account"})
    password = Password(required=True)


class InvitationPreviewRequestSchema(ma.Schema):
    token = ma.fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The `token` of the link in the invitation's e-mail"},
    )


class InvitationPreviewSchema(ma.Schema):
    email = ma.fields.String(required=True, metadata={"description": "The invited address"})
    agency_name = ma.fields.String(required=True)
    brand_name = ma.fields.String(allow_none=True, required=True)
    agency_role = ma.fields.String(allow_none=True, required=True)
    brand_role = ma.fields.String(allow_none=True, required=True)
    account_exists = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "The address has an account: accept with its password (no name). "
            "Otherwise, choose a name and a password."
        },
    )
    expires_at = ma.fields.AwareDateTime(required=True)


InvitationPageSchema = page_schema(InvitationSchema, "InvitationPageSchema")


class AuditEventSchema(ma.Schema):
    id = ma.fields.String(required=True)
    brand_id = ma.fields.String(allow_none=True, required=True)
    actor_type = ma.fields.String(required=True)
    actor_id = ma.fields.String(allow_none=True, required=True)
    action = ma.fields.String(required=True)
    target_type = ma.fields.String(required=True)
    target_id = ma.fields.String(allow_none=True, required=True)
    data = ma.fields.Dict(required=True)
    request_id = ma.fields.String(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class AuditQueryArgsSchema(PageArgsSchema):
    brand_id = Id("brd")
    action = Text(max_len=64)


AuditEventPageSchema = page_schema(AuditEventSchema, "AuditEventPageSchema")
