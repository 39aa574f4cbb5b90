"""Views that several routes share, made by factories: one piece of code where the routes'
logic is the same, each route keeping its own `operationId` and docstring (`operation`).

A route with logic of its own is written as a plain view method under `brand_route`
(app/api/http.py); these are for the reads and edits that every resource has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.api.http import PATH_OBJECTS, Blueprint, brand_route
from app.auth.principal import current_actor


def operation(view: Callable, operation_id: str, docstring: str) -> Callable:
    """A view made by a factory, given this route's `operationId` and docstring (its summary
    and description in the spec, as a view's own docstring would be)."""
    view.__doc__ = docstring
    return Blueprint.doc(operationId=operation_id)(view)


def read_view(
    blp: Blueprint, permission: str, schema: type, *, load: type | None = None
) -> Callable:
    """GET of one object, the brand or the object `load` names in the path, with its ETag."""
    name = _view_arg(load)

    @brand_route(permission, load=load, etag=True)
    @blp.response(200, schema)
    def get(self: Any, **objects: Any) -> Any:
        return objects[name]

    return get


def update_view(
    blp: Blueprint,
    permission: str,
    body: type,
    schema: type,
    update: Callable[..., Any],
    *,
    load: type | None = None,
    conflict: str | None = None,
) -> Callable:
    """PATCH of one object, the brand or the object `load` names: `update(obj, changes, actor=…)`
    under If-Match, answered with the object and its new ETag (`conflict`: the 409 it may
    answer)."""
    name = _view_arg(load)
    conflicts = (
        blp.alt_response(409, response="CONFLICT", description=conflict)
        if conflict
        else (lambda view: view)
    )

    @brand_route(permission, load=load, if_match=True, etag=True)
    @blp.arguments(body)
    @blp.response(200, schema)
    @conflicts
    def patch(self: Any, changes: dict[str, Any], **objects: Any) -> Any:
        return update(objects[name], changes, actor=current_actor())

    return patch


def _view_arg(load: type | None) -> str:
    """The name `brand_route` hands the object under (`brand` when the path names no other)."""
    return PATH_OBJECTS[load].view_arg if load is not None else "brand"
