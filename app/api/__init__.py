"""One flask-smorest Blueprint per resource. Views are thin: authenticate → parse → load
(or 404) → check → call a service → respond."""

from __future__ import annotations

from flask import Flask, request

from app.api.http import IdConverter, id_parameter_schema, is_public
from app.auth.principal import authenticate_request
from app.extensions import api


def register_blueprints(app: Flask) -> None:
    from app.api import (
        accounts,
        agency,
        api_keys,
        audit,
        brand_members,
        brands,
        docs,
        health,
        identity,
        index,
        invitations,
        media,
        metrics,
        posts,
        scheduling,
        webhooks,
    )

    app.url_map.converters["id"] = IdConverter
    api.register_converter(IdConverter, id_parameter_schema)
    app.register_blueprint(health.blp)
    app.register_blueprint(metrics.blp)
    app.register_blueprint(docs.blp)
    from app import pages

    app.register_blueprint(pages.blp)
    api.register_blueprint(index.blp)
    for module in (identity, agency, api_keys, invitations, brands, brand_members, audit):
        api.register_blueprint(module.blp)
    api.register_blueprint(posts.blp)
    api.register_blueprint(media.blp)
    api.register_blueprint(media.files_blp)
    api.register_blueprint(scheduling.blp)
    api.register_blueprint(accounts.blp)
    api.register_blueprint(webhooks.blp)
    webhooks.document_event_body(api)

    @app.before_request
    def _authenticate() -> None:
        # Secure by default: every /v1 route needs credentials unless marked @public.
        if request.method == "OPTIONS" or not request.path.startswith("/v1"):
            return
        view = app.view_functions.get(request.endpoint or "")
        if request.endpoint is None or is_public(view, request.method):
            return
        authenticate_request()
