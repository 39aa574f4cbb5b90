from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.errors import problem_response
from app.extensions import db, redis
from app.storage import get_storage

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """The process is up (no I/O)."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    """The database, Redis and the media storage answer (and, in production, the database
    role is a safe one). Not ready is a 503 problem document, like every other 5xx, with each
    check's state in its `checks` extension member."""
    checks: dict[str, str] = {}
    problems: list[str] = []
    try:
        if _checks_role():
            from app.startup import role_problems

            problems = role_problems(db.session)
        else:
            db.session.execute(text("SELECT 1"))
        db.session.rollback()
        checks["database"] = "unsafe role" if problems else "ok"
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
    if all(v == "ok" for v in checks.values()):
        return jsonify(status="ready", checks=checks)
    failing = ", ".join(f"{name} {state}" for name, state in checks.items() if state != "ok")
    return problem_response(
        503,
        " ".join([f"Not ready: {failing}."] + problems),
        code="not-ready",
        title="Not ready",
        extensions={"checks": checks},
    )


def _checks_role() -> bool:
    return current_app.config.get("ENV") == "production" and db.dialect == "postgresql"
