"""Finishing touches on the generated spec: each operation's security and auth errors.

Routes are authenticated unless marked `@public` (see `app.api.http`), and the spec says so
operation by operation, from the same marker, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest.spec.plugins import FlaskPlugin

from app.api.http import is_public

SECURED = [{"bearerAuth": []}, {"apiKeyAuth": []}]
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
            if is_public(view, method.upper()):
                operation["security"] = []
                continue
            operation["security"] = SECURED
            responses.setdefault("401", api.spec.components.get_ref("response", "UNAUTHORIZED"))
            responses.setdefault("403", api.spec.components.get_ref("response", "FORBIDDEN"))
            if "{" in path:
                responses.setdefault("404", api.spec.components.get_ref("response", "NOT_FOUND"))
