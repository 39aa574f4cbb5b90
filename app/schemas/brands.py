from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from app.fields import Name, Pattern
from app.models import ApprovalMode, BrandRole, BrandStatus
from app.schemas.common import HttpUrl, Id, PageArgsSchema, Timezone, page_schema

_COLOR = Pattern(r"^#[0-9a-fA-F]{6}$", error="A colour is #RRGGBB.")
_SLUG = Pattern(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="Lowercase letters, digits and -.")


class BrandingSchema(ma.Schema):
    logo_url = HttpUrl(
        allow_none=True,
        metadata={"description": "Address of the logo", "example": "https://example.com/logo.png"},
    )
    primary_color = ma.fields.String(allow_none=True, validate=_COLOR)
    secondary_color = ma.fields.String(allow_none=True, validate=_COLOR)


class BrandSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "brd_01JD5ZQ7R9X4M2B8C6N3P1T0VW"})
    name = ma.fields.String(required=True)
    slug = ma.fields.String(required=True)
    timezone = ma.fields.String(required=True, metadata={"example": "Europe/Paris"})
    approval_mode = ma.fields.String(
        required=True, validate=validate.OneOf([m.value for m in ApprovalMode])
    )
    branding = ma.fields.Nested(BrandingSchema, required=True)
    status = ma.fields.String(
        required=True, validate=validate.OneOf([s.value for s in BrandStatus])
    )
    archived_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class BrandCreateSchema(ma.Schema):
    name = Name(required=True)
    slug = ma.fields.String(
        validate=[validate.Length(min=1, max=60), _SLUG],
        metadata={"description": "Defaults to one made from the name"},
    )
    timezone = Timezone(load_default="UTC")
    approval_mode = ma.fields.String(
        load_default=ApprovalMode.NONE.value,
        validate=validate.OneOf([m.value for m in ApprovalMode]),
    )
    branding = ma.fields.Nested(BrandingSchema)


class BrandUpdateSchema(ma.Schema):
    name = Name()
    slug = ma.fields.String(validate=[validate.Length(min=1, max=60), _SLUG])
    timezone = Timezone()
    approval_mode = ma.fields.String(validate=validate.OneOf([m.value for m in ApprovalMode]))
    branding = ma.fields.Nested(BrandingSchema)


class BrandQueryArgsSchema(PageArgsSchema):
    status = ma.fields.String(
        validate=validate.OneOf([s.value for s in BrandStatus]),
        metadata={"description": "Only brands in this status"},
    )


BrandPageSchema = page_schema(BrandSchema, "BrandPageSchema")


class BrandExportSchema(ma.Schema):
    brand = ma.fields.Dict(required=True)
    tables = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.Dict()),
        required=True,
        metadata={"description": "Table name → every row the brand owns (secrets left out)"},
    )
    exported_at = ma.fields.AwareDateTime(required=True)


class BrandMemberSchema(ma.Schema):
    id = ma.fields.String(required=True)
    brand_id = ma.fields.String(required=True)
    user_id = ma.fields.String(required=True)
    role = ma.fields.String(required=True, validate=validate.OneOf([r.value for r in BrandRole]))
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class BrandMemberCreateSchema(ma.Schema):
    user_id = Id("usr", required=True)
    role = ma.fields.String(required=True, validate=validate.OneOf([r.value for r in BrandRole]))


class BrandMemberUpdateSchema(ma.Schema):
    role = ma.fields.String(required=True, validate=validate.OneOf([r.value for r in BrandRole]))


BrandMemberPageSchema = page_schema(BrandMemberSchema, "BrandMemberPageSchema")
