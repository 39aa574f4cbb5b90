"""`GET /v1`: what a newcomer (or a client's discovery step) reads first."""

from __future__ import annotations

from flask import current_app, url_for
from flask.views import MethodView

from app.api.http import Blueprint, public
from app.schemas.index import ApiIndexSchema

blp = Blueprint("index", __name__, url_prefix="/v1", description="The API's root")


@blp.route("")
class ApiIndex(MethodView):
    @public
    @blp.doc(operationId="getApiIndex")
    @blp.response(200, ApiIndexSchema)
    def get(self):
        """Links to the docs, the spec and the health checks

        Public. Absolute URLs, as this request reached the API.
        """
        return {
            "name": current_app.config["API_TITLE"],
            "version": current_app.config["API_VERSION"],
            "links": {
                "docs": url_for("docs.page", _external=True),
                "openapi": url_for("api-docs.openapi_json", _external=True),
                "health": url_for("health.healthz", _external=True),
                "ready": url_for("health.readyz", _external=True),
            },
        }
