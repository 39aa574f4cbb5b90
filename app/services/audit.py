"""The audit trail: who did what to which tenant object."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request

from app.extensions import db
from app.models import AuditEvent


def record(
    action: str,
    *,
    agency_id: str,
    target_type: str,
    target_id: str | None,
    brand_id: str | None = None,
    data: dict[str, Any] | None = None,
    actor_type: str | None = None,
    actor_id: str | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits)."""
    principal = g.get("principal")
    if actor_type is None:
        actor_type = principal.kind if principal else "system"
        actor_id = principal.id if principal else actor_id
    event = AuditEvent(
        agency_id=agency_id,
        brand_id=brand_id,
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data or {},
        request_id=g.get("request_id"),
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    return event
