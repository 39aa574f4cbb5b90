"""Webhook endpoints: an agency's own, created with a `whsec_` secret shown once, limited to
some event types and some brands if wished, changed, deleted, sent a test event or a past
delivery again. `rotate_secret` keeps the previous secret signing for an overlap
(`signing_secrets`). An endpoint is disabled by a person (`update_endpoint`) or by the sending
job (`disable`: a 410 Gone, or failing too long), which cancels what it had still to receive
and, when automatic, tells the agency's owners by mail.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select

from app import tenancy
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import (
    AgencyMembership,
    AgencyRole,
    Brand,
    DisabledReason,
    User,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from app.models.base import utcnow
from app.models.webhook import TEST_EVENT_TYPE
from app.security import crypto
from app.services import audit, outbox, webhooks

log = logging.getLogger("relais.webhooks")

SECRET_PREFIX = "whsec_"


# -- endpoints ----------------------------------------------------------------------------------


@dataclass
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as Standard Webhooks libraries read it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    agency_id: str, data: dict[str, Any], *, created_by: str | None, actor: audit.Actor
) -> EndpointWithSecret:
    brand_ids = _checked_brand_ids(data.get("brand_ids"))
    url = _checked_url(data["url"])
    secret = new_secret()
    now = utcnow()
    endpoint = WebhookEndpoint(
        agency_id=agency_id,
        url=url,
        description=data.get("description"),
        events=_normalized_events(data.get("events")),
        brand_ids=brand_ids,
        enabled=data.get("enabled", True),
        secrets_encrypted=crypto.encrypt({"current": secret, "previous": None}),
        created_by_user_id=created_by,
        created_at=now,
        updated_at=now,
        version=1,
    )
    if not endpoint.enabled:
        endpoint.disabled_reason = DisabledReason.MANUAL.value
        endpoint.disabled_at = now
    db.session.add(endpoint)
    db.session.flush()
    _audit(endpoint, "webhook_endpoint.created", {"url": url, "events": endpoint.events}, actor)
    db.session.commit()
    return EndpointWithSecret(endpoint, secret)


def update_endpoint(
    endpoint: WebhookEndpoint, changes: dict[str, Any], *, actor: audit.Actor
) -> WebhookEndpoint:
    if not changes:
        return endpoint
    if "url" in changes:
        endpoint.url = _checked_url(changes["url"])
    if "brand_ids" in changes:
        endpoint.brand_ids = _checked_brand_ids(changes["brand_ids"])
    if "events" in changes:
        endpoint.events = _normalized_events(changes["events"])
    if "description" in changes:
        endpoint.description = changes["description"]
    now = utcnow()
    if "enabled" in changes and changes["enabled"] != endpoint.enabled:
        if changes["enabled"]:
            endpoint.enabled = True
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
            # A fresh start: past failures no longer count towards disabling it again.
            endpoint.failing_since = None
        else:
            endpoint.enabled = False
            endpoint.disabled_reason = DisabledReason.MANUAL.value
            endpoint.disabled_at = now
            cancel_pending(endpoint.id)
    endpoint.updated_at = now
    endpoint.version += 1
    _audit(endpoint, "webhook_endpoint.updated", {"fields": sorted(changes)}, actor)
    db.session.commit()
    return endpoint


def delete_endpoint(endpoint: WebhookEndpoint, *, actor: audit.Actor) -> None:
    """The endpoint, its delivery log and whatever it had still to send."""
    _audit(endpoint, "webhook_endpoint.deleted", {"url": endpoint.url}, actor)
    db.session.delete(endpoint)
    db.session.commit()


def rotate_secret(
    endpoint: WebhookEndpoint, overlap_seconds: int | None, *, actor: audit.Actor
) -> str:
    """A new secret, returned this once; the previous one keeps signing, beside it, for
    `overlap_seconds` (WEBHOOK_SECRET_OVERLAP_SECONDS if None; 0 ends it at once). Only the
    secret being replaced is kept: rotating again during an overlap drops the older one."""
    if overlap_seconds is None:
        overlap_seconds = current_app.config["WEBHOOK_SECRET_OVERLAP_SECONDS"]
    try:
        previous = crypto.decrypt(endpoint.secrets_encrypted)["current"]
    except crypto.CredentialsUnreadable:
        previous = None  # it could not sign anyway: nothing to keep
    if overlap_seconds <= 0:
        previous = None
    secret = new_secret()
    now = utcnow()
    endpoint.secrets_encrypted = crypto.encrypt({"current": secret, "previous": previous})
    endpoint.previous_secret_expires_at = (
        now + timedelta(seconds=overlap_seconds) if previous else None
    )
    endpoint.updated_at = now
    endpoint.version += 1
    _audit(endpoint, "webhook_endpoint.secret_rotated", {"overlap_seconds": overlap_seconds}, actor)
    db.session.commit()
    return secret


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a message now: the current one, and the previous one during the
    overlap after a rotation. Raises crypto.CredentialsUnreadable without the key."""
    stored = crypto.decrypt(endpoint.secrets_encrypted)
    found = [stored["current"]]
    expires = endpoint.previous_secret_expires_at
    if stored.get("previous") and expires is not None and expires > now:
        found.append(stored["previous"])
    return found


def send_test(endpoint: WebhookEndpoint, *, actor: audit.Actor) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint alone, whatever its filters."""
    _require_enabled(endpoint, "send it a test event")
    now = utcnow()
    test_event = webhooks.record_event(
        TEST_EVENT_TYPE,
        endpoint.agency_id,
        None,
        {
            "endpoint_id": endpoint.id,
            "message": "A test event from Relais; it needs no action.",
        },
        [],
    )
    delivery = webhooks.new_delivery(test_event, endpoint.id, now=now)
    _audit(endpoint, "webhook_endpoint.tested", {"event_id": test_event.id}, actor)
    db.session.commit()
    return delivery


def redeliver(
    endpoint: WebhookEndpoint, delivery_id: str, *, actor: audit.Actor
) -> WebhookDelivery:
    """Send a past delivery's event again, as a new delivery with attempts of its own (and the
    same `webhook-id`, so a receiver that got it already can tell)."""
    original = get_delivery_or_404(endpoint, delivery_id)
    _require_enabled(endpoint, "redeliver")
    if original.status in (WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.SENDING):
        raise Conflict("This delivery is still being attempted; wait for its outcome.")
    webhook_event = db.session.scalars(
        tenancy.scoped_select(WebhookEvent).where(WebhookEvent.id == original.event_id)
    ).one()
    delivery = webhooks.new_delivery(
        webhook_event, endpoint.id, now=utcnow(), redelivery_of=original.id
    )
    _audit(endpoint, "webhook_endpoint.redelivered", {"delivery_id": original.id}, actor)
    db.session.commit()
    return delivery


def get_delivery_or_404(endpoint: WebhookEndpoint, delivery_id: str) -> WebhookDelivery:
    delivery = db.session.scalars(
        tenancy.scoped_select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    ).first()
    if delivery is None:
        raise NotFound(f"No delivery with id '{delivery_id}' for webhook endpoint '{endpoint.id}'.")
    return delivery


def deliveries_statement(endpoint: WebhookEndpoint, args: dict[str, Any]) -> Select[Any]:
    stmt = tenancy.scoped_select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if args.get("status"):
        stmt = stmt.where(WebhookDelivery.status == args["status"])
    return stmt


def cancel_pending(endpoint_id: str) -> int:
    """What a disabled endpoint had still to receive is not sent (redeliver it once enabled)."""
    result = db.session.execute(
        tenancy.scoped_update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING.value,
        )
        .values(
            status=WebhookDeliveryStatus.CANCELLED.value,
            next_attempt_at=None,
            last_error="The endpoint was disabled.",
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _require_enabled(endpoint: WebhookEndpoint, action: str) -> None:
    if not endpoint.enabled:
        raise Conflict(
            f"This endpoint is disabled ({endpoint.disabled_reason}); enable it "
            f"(PATCH with `enabled: true`) to {action}."
        )


def _checked_url(url: str) -> str:
    """Where the outbound guard lets requests go (app/security/outbound.py): public addresses
    over https, unless ALLOW_PRIVATE_NETWORK_TARGETS is set. Checked again at every attempt,
    against the addresses the name resolves to then."""
    from app.security import outbound  # httpx: loaded with the first use, not with the app

    try:
        outbound.check_target(url, user_given=True)
    except outbound.TargetRefused as exc:
        raise ValidationFailed(str(exc), errors={"url": [str(exc)]}) from exc
    return url


def _checked_brand_ids(brand_ids: list[str] | None) -> list[str] | None:
    if brand_ids is None:
        return None
    brand_ids = sorted(set(brand_ids))
    reachable = tenancy.scoped_select(Brand, Brand.id).where(Brand.id.in_(brand_ids))
    known = set(db.session.scalars(reachable))
    unknown = [b for b in brand_ids if b not in known]
    if unknown:
        # Well-formed ids of no brand of the agency: a 404, as for any other address.
        raise NotFound(
            f"Unknown brand ids: {', '.join(unknown)}.",
            errors={"brand_ids": [f"No brand with id '{b}'." for b in unknown]},
        )
    return brand_ids


def _normalized_events(events: list[str] | None) -> list[str] | None:
    return None if events is None else sorted(set(events))


def _audit(
    endpoint: WebhookEndpoint, action: str, data: dict[str, Any], actor: audit.Actor
) -> None:
    audit.record(
        action,
        actor=actor,
        agency_id=endpoint.agency_id,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        data=data,
    )


# -- disabling ----------------------------------------------------------------------------------


def disable(endpoint_id: str, reason: DisabledReason, *, now: datetime) -> bool:
    """Disable an enabled endpoint (the caller commits): its pending deliveries are cancelled,
    and the agency's owners are told by mail. False if it was disabled already."""
    changed = db.session.execute(
        tenancy.scoped_update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
        .values(
            enabled=False,
            disabled_reason=reason.value,
            disabled_at=now,
            updated_at=now,
            version=WebhookEndpoint.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        return False
    endpoint = db.session.scalars(
        tenancy.scoped_select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .execution_options(populate_existing=True)  # just changed by a statement
    ).one()
    cancel_pending(endpoint_id)
    audit.record(
        "webhook_endpoint.disabled",
        actor=audit.SYSTEM,
        agency_id=endpoint.agency_id,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        data={"reason": reason.value},
    )
    _tell_owners(endpoint, reason)
    log.warning(
        "webhook endpoint %s (agency %s) disabled: %s", endpoint.id, endpoint.agency_id, reason
    )
    return True


_REASONS = {
    DisabledReason.GONE: "it answered 410 Gone, which asks senders to stop",
    DisabledReason.FAILING: "it has not accepted any event since {since}",
}


def _tell_owners(endpoint: WebhookEndpoint, reason: DisabledReason) -> None:
    agency = tenancy.current_agency()
    owners = db.session.execute(
        tenancy.scoped_select(AgencyMembership, User.email, User.name)
        .select_from(AgencyMembership)
        .join(User, AgencyMembership.user_id == User.id)
        .where(AgencyMembership.role == AgencyRole.OWNER.value)
        .order_by(User.email)
    ).all()
    since = outbox.when(endpoint.failing_since) if endpoint.failing_since else "some time"
    for email, name in owners:
        outbox.send(
            "webhook_disabled",
            to=email,
            context={
                "name": name,
                "agency_name": agency.name,
                "url": endpoint.url,
                "endpoint_id": endpoint.id,
                "reason": _REASONS[reason].format(since=since),
            },
        )
