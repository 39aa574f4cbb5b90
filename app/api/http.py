"""HTTP conventions every view shares: public routes, keyset pages, ETags, idempotent creates."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import IO, Any
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

from app.errors import PreconditionFailed
from app.extensions import db
from app.json_provider import check_depth

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


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None


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


def send_etag(obj: Any) -> None:
    """Attach the object's current ETag to the response, after the view's changes."""

    @after_this_request
    def _add_etag(response: Response) -> Response:
        if response.status_code < 300:
            response.headers["ETag"] = etag_of(obj)
        return response


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


# -- Idempotency-Key -----------------------------------------------------------------------------

# Visible ASCII: what any client can put in a header and log without escaping (a UUID, say).
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,255}$"
IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    "description": (
        "Makes the create safe to retry for 24 h: the same key with the same body replays the "
        "first response; the same key with another body is a 422."
    ),
}


def idempotent(func: Callable) -> Callable:
    """Honour `Idempotency-Key` on a create view (see `app.services.idempotency`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from app.services import idempotency

        key = request.headers.get("Idempotency-Key")
        if key is None:
            return func(*args, **kwargs)
        body_hash = _body_fingerprint()
        replay = idempotency.begin(key, request.method, request.path, body_hash)
        if replay is not None:
            return replay
        try:
            response = current_app.make_response(func(*args, **kwargs))
        except BaseException:
            idempotency.abandon(key)
            raise

        # Stored once the response is final (ETag and Link are added by later callbacks).
        @after_this_request
        def _store(final: Response) -> Response:
            idempotency.finish(key, final)
            return final

        return response

    wrapper._apidoc = deepupdate(  # type: ignore[attr-defined]
        getattr(func, "_apidoc", {}), {"manual_doc": {"parameters": [IDEMPOTENCY_KEY_PARAMETER]}}
    )
    return wrapper


def _body_fingerprint() -> str:
    """Same JSON, same fingerprint, whatever the key order or whitespace."""
    if request.mimetype == "multipart/form-data":
        return _multipart_fingerprint()
    data = request.get_json(silent=True)
    raw = (
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        if data is not None
        else request.get_data()
    )
    return hashlib.sha256(raw or b"").hexdigest()


def _multipart_fingerprint() -> str:
    """Fields and files' bytes, read from Werkzeug's spooled parts chunk by chunk (an upload of
    a gigabyte must not be read into memory to be fingerprinted)."""
    digest = hashlib.sha256()
    # str() in the keys: a part without a name comes back as None, which does not sort with str.
    for name, value in sorted(request.form.items(multi=True), key=lambda i: (str(i[0]), i[1])):
        digest.update(json.dumps(["field", name, value]).encode())
    for name, upload in sorted(request.files.items(multi=True), key=lambda i: str(i[0])):
        digest.update(json.dumps(["file", name, upload.filename, upload.mimetype]).encode())
        upload.stream.seek(0)
        while chunk := upload.stream.read(1024 * 1024):
            digest.update(chunk)
        upload.stream.seek(0)
    return digest.hexdigest()
