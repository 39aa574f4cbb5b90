from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from app.extensions import db, redis
from app.storage import get_storage

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """The process is up (no I/O)."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    """The database, Redis and the media storage answer."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        checks["database"] = "unreachable"
    try:
        if redis.client is None:
            checks["redis"] = "not configured"
        else:
            redis.client.ping()
            checks["redis"] = "ok"
    except Exception:  # noqa: BLE001
        checks["redis"] = "unreachable"
    try:
        get_storage().check()
        checks["media_storage"] = "ok"
    except Exception:  # noqa: BLE001 - StorageUnavailable, or a backend that cannot be made
        checks["media_storage"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return response
