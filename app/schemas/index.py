"""The API's front door: `GET /v1`."""

from __future__ import annotations

import marshmallow as ma


class ApiLinksSchema(ma.Schema):
    docs = ma.fields.Url(required=True, metadata={"description": "The interactive API docs"})
    openapi = ma.fields.Url(
        required=True, metadata={"description": "The OpenAPI 3 spec, to generate clients from"}
    )
    health = ma.fields.Url(required=True, metadata={"description": "Liveness: the process is up"})
    ready = ma.fields.Url(
        required=True, metadata={"description": "Readiness: the database and Redis answer"}
    )


class ApiIndexSchema(ma.Schema):
    """Where to go from the API's root."""

    name = ma.fields.String(required=True, metadata={"example": "Relais API"})
    version = ma.fields.String(required=True, metadata={"example": "v1"})
    links = ma.fields.Nested(ApiLinksSchema, required=True)
