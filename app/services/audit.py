"""The audit trail: who did what to which tenant object, from where."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.extensions import db
from app.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts, as the trail records it, and the request they act through.

    Views pass the request's (`app.api.http.current_actor()`: the principal, the client's address
    and the request id); jobs and commands pass `SYSTEM`. Public routes start as `anonymous` and
    the service names the person once it knows them (`as_user`), as sign-up does.
    """

    type: str  # "user", "api_key", "system" or, before anyone is known, "anonymous"
    id: str | None = None
    ip: str | None = None
    request_id: str | None = None

    def as_user(self, user_id: str) -> Actor:
        """The same request, now known to be this person's."""
        return replace(self, type="user", id=user_id)

    def as_system(self) -> Actor:
        """The system reacting to this request (a burst of failed sign-ins, say)."""
        return replace(self, type="system", id=None)


SYSTEM = Actor(type="system")


def record(
    action: str,
    *,
    actor: Actor,
    agency_id: str,
    target_type: str,
    target_id: str | None,
    brand_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits)."""
    event = AuditEvent(
        agency_id=agency_id,
        brand_id=brand_id,
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data or {},
        request_id=actor.request_id,
        ip=actor.ip,
    )
    db.session.add(event)
    return event
