"""Finishing touches on the generated spec: what each operation needs and may answer.

Routes are authenticated unless marked `@public` (see `app.api.http`), and the spec says so
operation by operation, from the same marker, so the two cannot drift apart. Likewise the
errors every body-taking operation may answer, the `Link` header of every page, and the `oneOf`
of bodies that come in several forms are derived here from the code, never written by hand.

The spec is a contract for generated clients (openapi-python-client, openapi-typescript with
their default options), so two of apispec's habits are changed here, in `SpecConverter`.
It is OpenAPI 3.1 (app/config.py) because 3.0 has no way to say "this object, or null" that
both openapi-python-client and redocly's recommended rules read as such.
"""

from __future__ import annotations

import json
from copy import deepcopy
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask import Flask
from flask_smorest.spec.plugins import FlaskPlugin

from app.api.http import LINK_HEADER_DOC, is_public
from app.schemas.common import OneOfSchema

# The one project-wide description of the API, its license and where it is served.
INFO = {
    "description": (
        "Relais: multi-brand social publishing for agencies. Every error is "
        "`application/problem+json` (RFC 9457)."
    ),
    "license": {
        "name": "AGPL-3.0-or-later",
        "url": "https://spdx.org/licenses/AGPL-3.0-or-later.html",
    },
}
# Relative: the API is wherever this spec was fetched from. The committed spec must not carry
# one deployment's address (API_BASE_URL), and every path already starts with /v1.
SERVERS = [{"url": "/", "description": "The server that serves this spec"}]


class SpecConverter(OpenAPIConverter):
    """apispec's converter, with two habits changed for generated clients.

    - A field's `load_default`: apispec writes it as `default`, and openapi-typescript (default
      options) then makes the field required in request bodies, as if the server always sent
      it. Here the default is told in the field's description; only query parameters, which
      stay optional whatever their default, keep `default`.
    - A nullable enum: apispec writes `type: [string, "null"]` with `null` among the values,
      which openapi-python-client turns into a union of three enums. Here it is `anyOf` the
      enum and `null`, as apispec already writes a nullable nested object.
    """

    def field2default(self, field: ma.fields.Field, **kwargs: Any) -> dict:
        return {}

    def field2property(self, field: ma.fields.Field) -> dict:
        prop = super().field2property(field)
        default = super().field2default(field)
        if "default" in default:
            told = f"Defaults to `{json.dumps(default['default'], ensure_ascii=False)}`."
            description = prop.get("description", "").rstrip(". ")
            prop["description"] = f"{description}. {told}" if description else told
        return prop

    def field2nullable(self, field: ma.fields.Field, ret: dict) -> dict:
        if field.allow_none and "enum" in ret:
            values = [value for value in ret.pop("enum") if value is not None]
            return {"anyOf": [{"type": ret.pop("type"), "enum": values}, {"type": "null"}]}
        return super().field2nullable(field, ret)

    def _field2parameter(self, field: ma.fields.Field, *, name: str, location: str) -> dict:
        parameter = super()._field2parameter(field, name=name, location=location)
        parameter["schema"].update(super().field2default(field))
        return parameter


class SpecPlugin(MarshmallowPlugin):
    Converter = SpecConverter


def spec_options() -> dict[str, Any]:
    """What `Api.init_app(spec_kwargs=...)` needs; a new plugin per app (it holds the spec)."""
    return {
        "info": deepcopy(INFO),
        "servers": deepcopy(SERVERS),
        "marshmallow_plugin": SpecPlugin(),
    }


SECURED = [{"bearerAuth": []}, {"apiKeyAuth": []}]
# The name the error responses are registered under (Python 3.13 renamed 413's).
_TOO_LARGE = HTTPStatus.REQUEST_ENTITY_TOO_LARGE.name
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def document_security(app: Flask, api: Any) -> None:
    paths: dict[str, dict[str, Any]] = api.spec._paths
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1"):
            continue
        path = FlaskPlugin.flaskpath2openapi(rule.rule)
        operations = paths.get(path)
        if not operations:
            continue
        view = app.view_functions[rule.endpoint]
        for method in _HTTP_METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                ref = api.spec.components.get_ref
                responses.setdefault("400", ref("response", "BAD_REQUEST"))
                responses.setdefault("413", ref("response", _TOO_LARGE))
                responses.setdefault("415", ref("response", "UNSUPPORTED_MEDIA_TYPE"))
                responses.setdefault("422", ref("response", "UNPROCESSABLE_ENTITY"))
            if "{" in path:
                responses.setdefault("404", api.spec.components.get_ref("response", "NOT_FOUND"))
            if is_public(view, method.upper()):
                operation["security"] = []
                continue
            operation["security"] = SECURED
            responses.setdefault("401", api.spec.components.get_ref("response", "UNAUTHORIZED"))
            responses.setdefault("403", api.spec.components.get_ref("response", "FORBIDDEN"))


def document_pages(api: Any) -> None:
    """Every response that is a page (it has `next_cursor`) documents the `Link` header."""
    schemas = api.spec.components.schemas
    for operations in api.spec._paths.values():
        for method in _HTTP_METHODS:
            ok = operations.get(method, {}).get("responses", {}).get("200")
            if not isinstance(ok, dict):
                continue
            ref = ok.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
            name = ref.rsplit("/", 1)[-1] if ref else None
            if name in schemas and "next_cursor" in schemas[name].get("properties", {}):
                ok.setdefault("headers", {}).update(LINK_HEADER_DOC)


def document_one_of(api: Any) -> None:
    """A `OneOfSchema` body is documented as `oneOf` its alternatives."""
    converter = api.ma_plugin.converter
    for key, name in list(converter.refs.items()):
        schema_class = key[0]  # apispec keys a schema by (class, *modifiers)
        if not (isinstance(schema_class, type) and issubclass(schema_class, OneOfSchema)):
            continue
        alternatives = [converter.resolve_nested_schema(alt) for alt in schema_class.ALTERNATIVES]
        api.spec.components.schemas[name] = {
            "description": (schema_class.__doc__ or "").strip(),
            "oneOf": alternatives,
        }
