"""HTTP conventions every view shares: public routes, body limits, keyset pages, ETags and
If-Match, and the one preamble of every brand route (`brand_route`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar
from urllib.parse import urlencode

import flask_smorest
from flask import Request, Response, after_this_request, current_app, jsonify, request
from flask_smorest.utils import deepupdate
from sqlalchemy import Select
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.routing import BaseConverter, Map
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from app import tenancy
from app.auth import permissions
from app.auth.principal import Principal, current_principal
from app.errors import PreconditionFailed
from app.extensions import db
from app.json_provider import check_depth
from app.models import BrandMembership, Media, Post, SocialAccount
from app.services import media, posts

T = TypeVar("T")

# -- blueprints, request bodies and ids in paths --------------------------------------------------


class JsonBodyParser(FlaskParser):
    """webargs' parser, strict about the body: webargs reads a body it cannot parse as JSON,
    or no body at all, as "no fields given", so a PATCH would succeed while ignoring what was
    sent. Here a body in another media type is a 415 and a missing body a 422."""

    def _raw_load_json(self, req: Request) -> Any:
        if not req.get_data(cache=True):
            abort(422, messages={"json": {"_schema": ["A JSON body is required."]}})
        if not is_json_request(req):
            raise UnsupportedMediaType()
        check_depth(req.get_data(cache=True))
        return core.parse_json(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    """The Blueprint every API module uses (see `JsonBodyParser`, and `doc` below)."""

    ARGUMENTS_PARSER = JsonBodyParser()

    @staticmethod
    def doc(**kwargs: Any) -> Callable[[Callable], Callable]:
        """flask-smorest's `@blp.doc` (`operationId`, extra parameters...), without wrapping the
        view: its wrapper costs every request ~6 µs (`ensure_sync`) for documentation only."""

        def decorator(func: Callable) -> Callable:
            apidoc = deepcopy(getattr(func, "_apidoc", {}))
            apidoc["manual_doc"] = deepupdate(apidoc.get("manual_doc", {}), deepcopy(kwargs))
            func._apidoc = apidoc  # type: ignore[attr-defined]
            return func

        return decorator


class IdConverter(BaseConverter):
    """`<id(brd):brand_id>`: only a well-formed id of that kind reaches the view. Anything else is
    a 404 from routing, and `/v1/invitations/accept` cannot be read as an invitation id."""

    def __init__(self, url_map: Map, prefix: str = "[a-z]{2,5}") -> None:
        super().__init__(url_map)
        self.regex = rf"{prefix}_[0-9A-HJKMNP-TV-Z]{{26}}"


def id_parameter_schema(converter: IdConverter) -> dict[str, Any]:
    return {"type": "string", "pattern": f"^{converter.regex}$"}


# -- public routes -------------------------------------------------------------------------------


def public(func: Callable) -> Callable:
    """Mark a view as reachable without credentials; everything else needs them."""
    func._relais_public = True  # type: ignore[attr-defined]
    func._apidoc = deepupdate(getattr(func, "_apidoc", {}), {"manual_doc": {"security": []}})  # type: ignore[attr-defined]
    return func


def is_public(view_func: Callable | None, method: str) -> bool:
    if view_func is None:
        return True  # routing will answer 404/405
    return bool(getattr(_method_target(view_func, method), "_relais_public", False))


def _method_target(view_func: Callable, method: str) -> Callable | None:
    """The function that handles `method`: the MethodView's method, or the view itself."""
    view_class = getattr(view_func, "view_class", None)
    target = getattr(view_class, method.lower(), None) if view_class else view_func
    if target is None and view_class is not None and method == "HEAD":
        target = getattr(view_class, "get", None)
    return target


# -- request body size ---------------------------------------------------------------------------

# Room for a multipart form's boundaries and part headers around the file itself.
MULTIPART_FRAMING = 64 * 1024


def body_limit(limit: int | str, *, framing: int = 0) -> Callable[[Callable], Callable]:
    """Let a view take a body larger than MAX_CONTENT_LENGTH: up to `limit` bytes (a number,
    or the name of the config value that holds it) plus `framing`. Checked from Content-Length
    before the body is read, and enforced by Werkzeug while reading one without it."""

    def mark(func: Callable) -> Callable:
        func._relais_body_limit = (limit, framing)  # type: ignore[attr-defined]
        return func

    return mark


class _ChunkedBody(LimitedStream):
    """A body sent without Content-Length (chunked), capped at `max_length` bytes.

    Werkzeug's own cap (`LimitedStream` with `is_max`) raises 413 on a read past the limit,
    but `read()` of the whole body stops quietly at the limit, as it cannot tell a body of
    exactly that size from a longer one: `get_data()` would hand on a truncated body (a CSV
    missing its last rows). This one reads one byte further, and a byte there means too large.
    """

    def __init__(self, stream: IO[bytes], max_length: int) -> None:
        super().__init__(stream, max_length + 1, is_max=True)

    def readinto(self, b: Any) -> int | None:
        size = super().readinto(b)
        if self.tell() >= self.limit:
            raise RequestEntityTooLarge()
        return size


class RelaisRequest(Request):
    """Flask's request, refusing a chunked body past the route's limit (see `_ChunkedBody`)."""

    @cached_property
    def stream(self) -> IO[bytes]:  # type: ignore[override]
        limit = self.max_content_length
        if (
            limit is not None
            and self.content_length is None
            and "wsgi.input_terminated" in self.environ
        ):
            return _ChunkedBody(self.environ["wsgi.input"], limit)  # type: ignore[return-value]
        return super().stream


def body_limit_of(view_func: Callable | None, method: str) -> int | None:
    """The largest body the view takes for `method`, in bytes (see `body_limit`)."""
    target = _method_target(view_func, method) if view_func is not None else None
    limit, framing = getattr(target, "_relais_body_limit", (None, 0))
    if limit is None:
        return current_app.config.get("MAX_CONTENT_LENGTH")
    if isinstance(limit, str):
        limit = current_app.config[limit]
    return limit + framing


# -- keyset pagination ---------------------------------------------------------------------------


def paginate(stmt: Select[Any], id_column: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One keyset page of `stmt`, ordered by id (ids are time-ordered ULIDs).

    Sets the `Link: <…>; rel="next"` header and returns `{items, next_cursor}`.
    """
    return _page(list(db.session.scalars(_keyset(stmt, id_column, args))), args)


def paginate_rows(
    stmt: Select[Any],
    id_column: Any,
    args: dict[str, Any],
    dump: Callable[[Sequence[Any]], list[dict[str, Any]]],
) -> Response:
    """`paginate` for a statement of plain columns, answered as is: `dump` turns the page's
    rows into its items exactly as the view's response schema would dump them.

    For the busiest lists, where building ORM objects and dumping them field by field costs
    several times the query. The schema still documents the response; a test must hold the
    two shapes equal.
    """
    rows = db.session.connection().execute(_keyset(stmt, id_column, args)).all()
    return page_response(rows, args, dump)


def page_response(
    rows: Sequence[Any], args: dict[str, Any], dump: Callable[[Sequence[Any]], list[dict[str, Any]]]
) -> Response:
    """The answer of `paginate_rows` for a page its caller read itself (rows after the cursor,
    by id, at most `limit` + 1 of them; the first column is the id)."""
    page = _page(rows, args)
    page["items"] = dump(page["items"])
    return jsonify(page)


def _keyset(stmt: Select[Any], id_column: Any, args: dict[str, Any]) -> Select[Any]:
    # The cursor is the last id of the previous page: ids are opaque and time-ordered, so it
    # needs no encoding, and any well-formed id is a valid place to start from.
    if args.get("cursor"):
        stmt = stmt.where(id_column > args["cursor"])
    return stmt.order_by(id_column).limit(args["limit"] + 1)


def _page(rows: Sequence[Any], args: dict[str, Any]) -> dict[str, Any]:
    limit = args["limit"]
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    items = list(rows[:limit])
    if next_cursor:
        query = {k: v for k, v in request.args.items() if k != "cursor"}
        query["cursor"] = next_cursor
        link = f'<{request.base_url}?{urlencode(query)}>; rel="next"'

        @after_this_request
        def _add_link(response: Response) -> Response:
            response.headers["Link"] = link
            return response

    return {"items": items, "next_cursor": next_cursor}


LINK_HEADER_DOC = {
    "Link": {
        "description": 'RFC 8288 link to the next page (`rel="next"`), absent on the last page',
        "schema": {"type": "string"},
    }
}

# -- ETag / If-Match -----------------------------------------------------------------------------

ETAG_HEADER_DOC = {
    "ETag": {"description": "Version of the resource, for If-Match", "schema": {"type": "string"}}
}
IF_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "ETag from a previous read; the write fails with 412 if the resource changed.",
}


def etag_of(obj: Any) -> str:
    return f'"{obj.id}.v{obj.version}"'


def send_etag(obj: T) -> T:
    """Attach the object's current ETag to the response, after the view's changes (not to a
    204: no representation, and a deleted object has no version left to read); returns the
    object, for a create to answer with (`return send_etag(created)`)."""

    @after_this_request
    def _add_etag(response: Response) -> Response:
        if response.status_code < 300 and response.status_code != 204:
            response.headers["ETag"] = etag_of(obj)
        return response

    return obj


def check_if_match(obj: Any) -> None:
    """Optimistic concurrency: a stale If-Match is a 412 (no If-Match: last write wins)."""
    if_match = request.headers.get("If-Match")
    if not if_match:
        return
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in candidates or etag_of(obj) in candidates:
        return
    raise PreconditionFailed(
        "Someone changed this resource since you read it; fetch it again and reapply your change.",
        headers={"ETag": etag_of(obj)},
    )


# -- brand routes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathObject:
    """An object a brand route's path names: its path argument, the argument the view gets it
    as, and how to find it in a brand for a caller (a 404 for one they may not see)."""

    path_arg: str
    view_arg: str
    find: Callable[[str, str, Principal], Any]


def _in_brand(model: type, what: str) -> Callable[[str, str, Principal], Any]:
    """Found in its brand, whoever the caller (their role decides what they may do with it)."""
    return lambda brand_id, object_id, _principal: tenancy.get_in_brand_or_404(
        model, brand_id, object_id, what=what
    )


PATH_OBJECTS: dict[type, PathObject] = {
    Post: PathObject("post_id", "post", posts.get_post_or_404),
    Media: PathObject("media_id", "media", media.get_or_404),
    SocialAccount: PathObject("account_id", "account", _in_brand(SocialAccount, "social account")),
    BrandMembership: PathObject(
        "membership_id", "membership", _in_brand(BrandMembership, "member")
    ),
}


@dataclass(frozen=True)
class BrandRoute:
    """What `brand_route` checks before a view, kept on the view (`_relais_brand_route`)."""

    permission: str
    load: type | None
    load_brand: bool
    if_match: bool
    etag: bool
    # The decorator's own wrapper: a wrapper stacked above it copies this mark
    # (functools.wraps) but would run before the checks (see `brand_route_of`).
    wrapper: Callable = field(compare=False, repr=False)


def brand_route(
    permission: str,
    *,
    load: type | None = None,
    load_brand: bool = True,
    if_match: bool = False,
    etag: bool = False,
) -> Callable[[Callable], Callable]:
    """The one preamble of every route under `/v1/brands/<brand_id>`; stack it above
    `@idempotent`, `@blp.arguments`, `@blp.response` and `@blp.alt_response` (only decorators
    that wrap nothing, `@blp.doc` and `@body_limit`, may sit above it).

    Before anything reads, parses or validates the request's body or query, it answers 404
    for a brand the caller cannot reach, then for the object the path names (`load`: `Post`,
    `Media`, `SocialAccount` or `BrandMembership`, found as the caller may see it: a post a
    client may not see is a 404 like another tenant's), then 403 if `permission` is not the
    caller's on the brand. The view gets `brand` (the Brand) and the object, named after it
    (`post`, `media`, `account`, `membership`), in place of their ids:

        @brand_route("posts.write", load=Post, if_match=True, etag=True)
        @blp.arguments(PostUpdateSchema)
        @blp.response(200, PostSchema)
        def patch(self, changes, brand, post): ...

    `if_match=True` on every change of an existing post, brand, account or media: a stale
    `If-Match` (checked against the object, or the brand when there is none) is a 412 before
    the change. `etag=True`: the response carries the object's ETag, as it is after the view.
    Each documents itself (the If-Match parameter and the 412; the ETag header).

    `load_brand=False` is for the busiest lists: the view gets `brand_id` instead of a Brand
    and must answer 404 itself for a brand that is not there (posts' list reads only scoped
    rows, and looks the brand up on an empty page). The 404 before a 403 still holds: the
    brand is looked up here whenever the permission is refused.
    """
    if load is not None and not load_brand:
        raise TypeError("brand_route: an object is looked up in its Brand; keep load_brand")

    def decorate(func: Callable) -> Callable:
        found = PATH_OBJECTS[load] if load is not None else None

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            brand_id = kwargs.pop("brand_id")
            principal = current_principal()
            if not load_brand:
                if not permissions.can(principal, permission, brand_id):
                    tenancy.brand_id_or_404(brand_id)
                    permissions.require(principal, permission, brand_id)
                return func(*args, brand_id=brand_id, **kwargs)
            brand = tenancy.get_brand_or_404(brand_id)
            target: Any = brand
            if found is not None:
                target = found.find(brand.id, kwargs.pop(found.path_arg), principal)
                kwargs[found.view_arg] = target
            permissions.require(principal, permission, brand.id)
            if if_match:
                check_if_match(target)
            if etag:
                send_etag(target)
            return func(*args, brand=brand, **kwargs)

        wrapper._relais_brand_route = BrandRoute(  # type: ignore[attr-defined]
            permission, load, load_brand, if_match, etag, wrapper
        )
        if if_match or etag:
            wrapper._apidoc = _with_etag_doc(func, if_match=if_match, etag=etag)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _with_etag_doc(func: Callable, *, if_match: bool, etag: bool) -> dict[str, Any]:
    """The view's doc with the If-Match parameter and the 412, and the ETag header on its
    success responses (none on a 204: no representation to tag)."""
    apidoc = deepcopy(getattr(func, "_apidoc", {}))
    if not apidoc.get("success_status_codes"):
        raise TypeError(f"brand_route on {func.__qualname__}: stack it above @blp.response")
    responses = apidoc["response"]["responses"]
    if if_match:
        manual = apidoc.setdefault("manual_doc", {})
        manual["parameters"] = [*manual.get("parameters", []), IF_MATCH_PARAMETER]
        # A reference to the shared problem response (ProblemApi in app/errors.py).
        responses.setdefault(412, []).append("PRECONDITION_FAILED")
    if etag:
        for code in apidoc["success_status_codes"]:
            for doc in responses[code] if int(code) != 204 else ():
                if isinstance(doc, dict):
                    doc["headers"] = {**ETAG_HEADER_DOC, **(doc.get("headers") or {})}
    return apidoc


def brand_route_of(view_func: Callable | None, method: str) -> BrandRoute | None:
    """The `brand_route` checks of the view that handles `method`, if they run first: None
    for a view without them, or with a wrapper (`@blp.arguments`, `@idempotent`...) stacked
    above them, which would read the request before the checks."""
    target = _method_target(view_func, method) if view_func is not None else None
    mark = getattr(target, "_relais_brand_route", None)
    return mark if mark is not None and mark.wrapper is target else None
