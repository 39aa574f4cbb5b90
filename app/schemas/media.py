from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import validate
from werkzeug.datastructures import FileStorage

from app.fields import Text
from app.models.media import ALLOWED_TYPES
from app.schemas.common import PageArgsSchema, page_schema

MAX_ALT_TEXT = 1500


class FileField(Upload):
    """A file part of a multipart body (a plain form value under that name is refused)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Send the file as a file part of a multipart/form-data body.")
        return value


class MediaSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "med_01JD5ZQ7R9X4M2B8C6N3P1T0VW"})
    brand_id = ma.fields.String(required=True)
    filename = ma.fields.String(required=True, metadata={"description": "As uploaded (a label)"})
    content_type = ma.fields.String(
        required=True,
        validate=validate.OneOf(list(ALLOWED_TYPES)),
        metadata={"description": "Detected from the file's bytes, not taken from the upload"},
    )
    kind = ma.fields.Function(
        lambda m: m.content_type.split("/")[0],
        required=True,
        metadata={"type": "string", "enum": ["image", "video"]},
    )
    size_bytes = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True, metadata={"description": "Hex SHA-256 of the file"})
    width = ma.fields.Integer(required=True, allow_none=True)
    height = ma.fields.Integer(required=True, allow_none=True)
    duration_seconds = ma.fields.Float(
        required=True, allow_none=True, metadata={"description": "Videos only"}
    )
    alt_text = ma.fields.String(required=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True, allow_none=True)


class MediaUploadSchema(ma.Schema):
    file = FileField(
        required=True,
        metadata={"description": "JPEG, PNG, GIF, WebP, MP4 or MOV; its type is checked"},
    )
    alt_text = Text(
        max_len=MAX_ALT_TEXT, metadata={"description": "Description for people who cannot see it"}
    )


class MediaUpdateSchema(ma.Schema):
    alt_text = Text(max_len=MAX_ALT_TEXT, allow_none=True)


class MediaQueryArgsSchema(PageArgsSchema):
    kind = ma.fields.String(
        validate=validate.OneOf(["image", "video"]),
        metadata={"description": "Only images or only videos"},
    )


MediaPageSchema = page_schema(MediaSchema, "MediaPageSchema")
