"""The Relais Flask application."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from app.config import Config, config_as_dict

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(config: type[Config] | Config | dict[str, Any] | None = None) -> Flask:
    """Build an application. No I/O happens here: connections open on first use."""
    app = Flask(__name__)
    from app.json_provider import RelaisJSONProvider

    app.json = RelaisJSONProvider(app)
    if config is None:
        config = Config
    settings = config if isinstance(config, dict) else config_as_dict(config)
    app.config.update(settings)
    from app import logs, metrics

    logs.configure(app.config)  # every process's one handler: LOG_FORMAT, LOG_LEVEL
    metrics.prepare_directory()
    from app.startup import check_config

    check_config(app.config)  # the development secret, then every refusal (app/startup.py)
    from app.storage import check_config as check_storage_config

    check_storage_config(app.config)
    _warn_about_production_database(app)

    from app.extensions import api, db, redis

    db.init_app(app)
    redis.init_app(app)
    from app.openapi import spec_options

    api.init_app(app, spec_kwargs=spec_options())
    _declare_security_schemes(api)

    from app.errors import register_error_handlers

    register_error_handlers(app, api)

    from app.security import crypto

    crypto.init_app(app)

    from app import mail

    mail.init_app(app)
    _install_request_id(app)
    _install_request_observability(app)
    _install_body_limit(app)
    _install_no_store(app)
    # Before CORS: after-request functions run in reverse order, so these headers are set
    # last, on top of what flask-cors adds.
    _install_security_headers(app)
    _install_cors(app)
    _trust_proxy_headers(app)

    from app.api import register_blueprints

    register_blueprints(app)

    from app.openapi import document_one_of, document_pages, document_security

    document_security(app, api)
    document_pages(api)
    document_one_of(api)

    from app.cli import register_commands

    register_commands(app)
    return app


def _warn_about_production_database(app: Flask) -> None:
    # SQLite is the embedded default; in production it means no Row-Level Security and one
    # writer at a time, most likely because DATABASE_URL was forgotten: say so loudly.
    if app.config.get("ENV") == "production" and app.config["DATABASE_URL"].startswith("sqlite"):
        app.logger.warning(
            "RELAIS_ENV=production but the database is SQLite (%s): set DATABASE_URL to "
            "PostgreSQL (Row-Level Security, concurrent writers).",
            app.config["DATABASE_URL"],
        )


def _declare_security_schemes(api: Any) -> None:
    api.spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from POST /v1/auth/token",
        },
    )
    api.spec.components.security_scheme(
        "apiKeyAuth",
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "Agency API key from POST /v1/api-keys",
        },
    )


def _install_request_id(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id") or ""
        return response


# Probes and scrapes, every few seconds: no access line for them.
_UNLOGGED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_access_log = logging.getLogger("relais.access")


_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_templates: dict[str, str] = {}


def _route_template(rule: str) -> str:
    """`/v1/brands/<id(brd):brand_id>` as the spec writes it: `/v1/brands/{brand_id}`."""
    template = _templates.get(rule)
    if template is None:
        template = _templates[rule] = _CONVERTER.sub(r"{\1}", rule)
    return template


def _install_request_observability(app: Flask) -> None:
    """The log context of each request (app/logs.py): its id, then the ids in its URL; one
    access line per request; and the HTTP metrics (app/metrics.py), by route template."""
    from app import logs, metrics
    from app.ids import looks_like_id

    @app.before_request
    def _open_log_context() -> None:
        g.request_started = time.perf_counter()
        ids = {
            name: value
            for name, value in (request.view_args or {}).items()
            if name.endswith("_id") and isinstance(value, str) and looks_like_id(value)
        }
        g.log_context = logs.start(request_id=g.request_id, **ids)

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:  # a before_request before ours answered
            return response
        seconds = time.perf_counter() - started
        rule = request.url_rule
        route = _route_template(rule.rule) if rule is not None else "unmatched"
        try:
            metrics.http_request(request.method, route, response.status_code, seconds)
        except OSError as exc:  # the metrics directory is gone: say so, answer anyway
            _access_log.warning("HTTP metrics not recorded: %s", exc)
        if request.path not in _UNLOGGED_PATHS and _access_log.isEnabledFor(logging.INFO):
            # The route's template, never the path: some paths carry a token (signed links).
            # The record is made directly: `info()` would also walk the stack for a source line
            # that no format shows, on every request.
            milliseconds = round(seconds * 1000, 1)
            status = response.status_code
            record = _access_log.makeRecord(
                _access_log.name,
                logging.INFO,
                __file__,
                0,
                "%s %s %s %.1fms",
                (request.method, route, status, milliseconds),
                None,
                extra={
                    "fields": {
                        "method": request.method,
                        "route": route,
                        "status": status,
                        "duration_ms": milliseconds,
                    }
                },
            )
            _access_log.handle(record)
        return response

    @app.teardown_request
    def _close_log_context(_exc: BaseException | None) -> None:
        token = g.pop("log_context", None)
        if token is not None:
            logs.end(token)

    @app.teardown_appcontext
    def _forget_tenant_in_logs(_exc: BaseException | None) -> None:
        # The tenant scope lives on `g` and ends with the app context (a CLI command, a
        # script); the agency id it put in the log context ends with it.
        logs.bind(agency_id=None)


def _install_no_store(app: Flask) -> None:
    # API answers carry tokens, keys shown once and tenant data: no cache may keep them
    # (RFC 6749 5.1 requires it of token responses). A view that wants caching says so itself.
    @app.after_request
    def _no_store(response: Response) -> Response:
        if request.path.startswith("/v1") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response


def _install_body_limit(app: Flask) -> None:
    """Refuse an oversized body from its Content-Length, before anything reads it (even
    before authentication: an anonymous 150 MB body costs nothing). The limit is
    MAX_CONTENT_LENGTH unless the view allows more (`app.api.http.body_limit`). A body
    without Content-Length (chunked) is cut off by Werkzeug at the same limit while read."""
    from werkzeug.exceptions import RequestEntityTooLarge

    from app.api.http import RelaisRequest, body_limit_of

    app.request_class = RelaisRequest

    @app.before_request
    def _refuse_oversized_body() -> None:
        limit = body_limit_of(app.view_functions.get(request.endpoint or ""), request.method)
        request.max_content_length = limit
        if limit is not None and (request.content_length or 0) > limit:
            raise RequestEntityTooLarge()


def _install_security_headers(app: Flask) -> None:
    """On every response, errors, /docs and the spec included: no MIME sniffing (a body is
    what its Content-Type says), and no framing by any page (clickjacking; the CSP directive
    for today's browsers, X-Frame-Options for older ones). With CORS on, the answer depends
    on the request's Origin, so every response says so, even one to a request without
    Origin (flask-cors adds Vary only to CORS answers), or a cache could serve it to a
    browser with an Origin."""
    cors_on = bool(app.config.get("CORS_ORIGINS"))

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        policy = headers.get("Content-Security-Policy")
        if not policy:
            headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        elif "frame-ancestors" not in policy:
            headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
        if cors_on:
            vary = {v.strip() for value in headers.getlist("Vary") for v in value.split(",")}
            vary.discard("")
            headers["Vary"] = ", ".join(sorted(vary | {"Origin"}))
        return response


def _trust_proxy_headers(app: Flask) -> None:
    """Behind one reverse proxy, take the client address and scheme from its X-Forwarded-*
    headers (per-IP login throttling needs the real address). Off by default: without a proxy
    in front, anyone could forge them."""
    if not app.config.get("TRUST_PROXY_HEADERS"):
        return
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]


def _install_cors(app: Flask) -> None:
    origins = app.config.get("CORS_ORIGINS") or []
    if not origins:
        return
    from flask_cors import CORS

    CORS(
        app,
        origins=origins,
        expose_headers=["ETag", "Link", "X-Request-Id", "Retry-After", "Location"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "If-Match",
            "Idempotency-Key",
            "X-API-Key",
            "X-Request-Id",
        ],
    )
