"""Finishing touches on the generated spec: what each operation needs and may answer.

Routes are authenticated unless marked `@public` (see `app.api.http`), and the spec says so
operation by operation, from the same marker, so the two cannot drift apart. Likewise the
errors every body-taking operation may answer, the `Link` header of every page, and the `oneOf`
of bodies that come in several forms are derived here from the code, never written by hand.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask
from flask_smorest.spec.plugins import FlaskPlugin

from app.api.http import LINK_HEADER_DOC, is_public
from app.schemas.common import OneOfSchema

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
