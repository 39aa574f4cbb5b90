"""`GET /metrics`: Prometheus text exposition (app/metrics.py), outside the API and its spec,
like `/healthz`.

Who may read it: with METRICS_TOKEN set, a scraper presenting `Authorization: Bearer <token>`
(Prometheus' `authorization` setting), wherever it is. Without it, only clients on this machine
(a loopback address, as the server sees it), and never in production, where a reverse proxy on
the same machine would make every visitor look local. The metrics carry no tenant data (see
app/metrics.py), but how busy the service is is still nobody else's business.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, request

from app import metrics
from app.errors import problem_response
from app.extensions import redis

blp = Blueprint("metrics", __name__)


@blp.get("/metrics")
def metrics_view():
    """Every metric of this machine's processes, and the queue depths (text/plain)."""
    refusal = _refusal()
    if refusal is not None:
        return refusal
    body = metrics.render(redis.client)
    return Response(body, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def _refusal() -> Response | None:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        presented = request.headers.get("Authorization", "")
        if hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            return None
        return problem_response(
            401,
            "Present the metrics token: Authorization: Bearer <METRICS_TOKEN>.",
            code="metrics-token-required",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if current_app.config.get("ENV") == "production":
        return problem_response(
            404,
            "Metrics are off: set METRICS_TOKEN to read them with that bearer token.",
            code="metrics-off",
            title="Not Found",
        )
    if not _is_loopback(request.remote_addr):
        return problem_response(
            403,
            "Without METRICS_TOKEN, metrics are only served to this machine.",
            code="metrics-local-only",
        )
    return None


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False
