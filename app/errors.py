"""One error shape for every error: RFC 9457 `application/problem+json`.

Routing 404/405, validation 422, our own domain errors and unexpected 500s all leave through
`problem_response`, so a client parses one shape and never sees a stack trace, SQL or a secret.
"""

from __future__ import annotations

import http
import logging
from typing import Any

import marshmallow as ma
from flask import Flask, g, jsonify, request
from flask_smorest import Api
from flask_smorest.spec import prepare_response
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://relais.dev/problems/"

log = logging.getLogger(__name__)


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = ma.fields.String(required=True, metadata={"description": "URI naming the problem kind"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    instance = ma.fields.String(metadata={"description": "The request path"})
    request_id = ma.fields.String(metadata={"description": "Echo of X-Request-Id"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        metadata={"description": "Messages per field, for validation problems"},
    )


class AppError(Exception):
    """A domain error a service raises; the API turns it into a problem document."""

    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class ValidationFailed(AppError):
    status, code, title = 422, "validation-failed", "The request is not valid"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="relais"')


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload-too-large", "The upload is too large"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition-failed", "The resource changed"


class TooManyRequests(AppError):
    status, code, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers["Retry-After"] = str(max(1, int(retry_after)))


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
):
    phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (code or phrase.lower().replace(" ", "-") or "error"),
        "title": title or phrase or "Error",
        "status": status,
        "detail": detail,
        "instance": request.path,
        "request_id": getattr(g, "request_id", None) or "",
    }
    if errors:
        body["errors"] = errors
    # RFC 9457 extension members: more about this kind of problem (e.g. /readyz's checks).
    body.update(extensions or {})
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM_CONTENT_TYPE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs_messages(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests messages by location ({"json": {...}, "query": {...}}); merge them so a
    client reads `errors[field]` whatever the location."""
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            for name, value in fields.items():
                key = name if location in ("json", "form", "files") else f"{location}.{name}"
                flat[key] = value
        else:
            flat[location] = fields
    return flat


_HTTP_DETAILS = {
    404: "No resource at this address.",
    405: "This method is not allowed on this resource.",
    415: "Send the body as application/json.",
}


class ProblemApi(Api):
    """flask-smorest's Api, speaking problem+json for every error and documenting it so."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Problem details (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def _register_pagination_header(self) -> None:
        # Pages are keyset pages with a `Link` header (app.api.http.paginate), never
        # flask-smorest's X-Pagination, whose header and schema would sit unused in the spec.
        return None

    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        errors = None
        if "messages" in data:
            errors = _flatten_webargs_messages(data["messages"])
        elif "errors" in data:
            errors = data["errors"]
        if status == 422:
            detail = "The request is not valid; see `errors` for each field."
        elif status == 413:
            detail = _too_large_detail()
        elif status >= 500:
            detail = "An unexpected error occurred; quote the request id when reporting it."
        else:
            detail = data.get("message") or _HTTP_DETAILS.get(status) or error.description or ""
        headers = dict(data.get("headers") or {})
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        if status == 405 and "Allow" not in headers:
            allowed = _allowed_methods()
            if allowed:
                headers["Allow"] = allowed
        return problem_response(status, detail, errors=errors, headers=headers)


def _too_large_detail() -> str:
    """Say which limit the request broke: the body's (MAX_CONTENT_LENGTH, or the route's own),
    or, for a form whose body fits, a field or part count (Werkzeug's form parser limits)."""
    from flask import current_app

    limit = request.max_content_length
    length = request.content_length
    fits = length is not None and limit is not None and length <= limit
    if fits and request.mimetype.startswith("multipart/"):
        return (
            f"A form field other than a file is larger than "
            f"{current_app.config['MAX_FORM_MEMORY_SIZE']} bytes, or the form has more than "
            f"{current_app.config['MAX_FORM_PARTS']} parts."
        )
    if not limit:
        return "The request body is too large."
    return f"The request body is larger than this route accepts: at most {limit} bytes."


def _allowed_methods() -> str:
    from flask import current_app

    adapter = current_app.url_map.bind("")
    try:
        methods = adapter.allowed_methods(request.path)
    except HTTPException:
        return ""
    return ", ".join(sorted(methods))


def register_error_handlers(app: Flask, api: ProblemApi) -> None:
    @app.errorhandler(AppError)
    def _handle_app_error(error: AppError):
        return problem_response(
            error.status,
            error.detail,
            code=error.code,
            title=error.title,
            errors=error.errors,
            headers=error.headers,
        )

    @app.errorhandler(StaleDataError)
    def _handle_lost_update(_error: StaleDataError):
        # Two writers passed their If-Match check at the same moment; the version column
        # (version_id_col) stopped the second one. Same answer as a stale If-Match.
        return problem_response(
            412,
            "Someone changed this resource at the same moment; fetch it again and reapply "
            "your change.",
            code=PreconditionFailed.code,
            title=PreconditionFailed.title,
        )

    @app.errorhandler(OperationalError)
    def _handle_busy_database(error: OperationalError):
        # SQLite, the embedded default, takes one writer at a time: a write that waited out
        # busy_timeout behind others is worth retrying, not a server error.
        if "database is locked" not in str(error.orig):
            return _handle_unexpected(error)
        return problem_response(
            503,
            "The database is busy with other writes; retry in a moment.",
            code="database-busy",
            title="The database is busy",
            headers={"Retry-After": "1"},
        )

    @app.errorhandler(Exception)
    def _handle_unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        log.exception("unhandled error (request id %s)", getattr(g, "request_id", "-"))
        return api.handle_http_exception(InternalServerError())


class BadGateway(AppError):
    """A social network (or another upstream) failed or did not answer; worth retrying later."""

    status, code, title = 502, "network-unavailable", "The network did not answer properly"
