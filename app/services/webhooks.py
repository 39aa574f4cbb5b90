"""Outgoing webhooks: the agency's endpoints, and the events the rest of the app emits.

- `emit(event_type, agency_id=…, brand_id=…, data=…)` is the one way an event is sent. Called
  inside the transaction of the change it announces, it writes the event (its exact JSON body)
  and one delivery per enabled endpoint whose filters take it; once that transaction commits,
  each delivery is enqueued (`workers.jobs.webhooks.deliver_webhook`, queue `webhooks`); if it
  rolls back, nothing was sent. No endpoint takes it: nothing is written at all.
  `emit_for_post`, `emit_for_account` and `emit_for_delivery` build `data` from a row, so that
  every event about a post (an account, a publishing delivery) carries the same shape. Posts
  and deliveries are announced by app/services/lifecycle.py as they move (its tables map what
  it records to event types), accounts by `account_health.mark_needs_reconnect`.
- The body every endpoint receives (documented as `WebhookEvent` in the spec):
  `{"id", "type", "timestamp", "agency_id", "brand_id", "data"}`; `id` is also the
  `webhook-id` header, the same on every attempt and redelivery, for receivers to dedupe.
- Endpoints: created with a `whsec_` secret shown once, limited to some event types and some
  brands if wished; `rotate_secret` keeps the previous secret signing for an overlap.
- Sending, retries and disabling: app/services/webhook_delivery.py.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, event
from sqlalchemy.orm import Session

from app import tenancy
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.fields import dump_datetime
from app.ids import PREFIXES, new_id
from app.models import (
    Brand,
    Delivery,
    DisabledReason,
    Post,
    SocialAccount,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)
from app.models.base import utcnow
from app.models.webhook import TEST_EVENT_TYPE
from app.security import crypto
from app.services import audit

EVENT_TYPES = frozenset(t.value for t in WebhookEventType)
SECRET_PREFIX = "whsec_"
# Deliveries made in a transaction, enqueued once it commits (see `_enqueue_after_commit`).
_PENDING = "relais_webhooks_pending"


# -- emitting events ----------------------------------------------------------------------------


def emit(
    event_type: str, *, agency_id: str, brand_id: str | None, data: dict[str, Any]
) -> WebhookEvent | None:
    """Send `event_type` to the agency's endpoints that take it, once the caller commits.

    `data` must be JSON (ids, strings, numbers, RFC 3339 instants): it is the `data` of the
    body. Returns the event, or None when no endpoint takes it (nothing is written then).
    """
    endpoints = _endpoints_taking(event_type, agency_id, brand_id)
    if not endpoints:
        return None
    return _record(event_type, agency_id, brand_id, data, endpoints)


def _endpoints_taking(
    event_type: str, agency_id: str, brand_id: str | None
) -> list[WebhookEndpoint]:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    # The agency's endpoints, whoever the caller is: an editor's change of one brand reaches
    # endpoints that the editor could not read.
    scope = tenancy.TenantScope(agency_id=agency_id)
    return [
        endpoint
        for endpoint in db.session.scalars(
            tenancy.scoped_select(WebhookEndpoint, scope=scope)
            .where(WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.id)
        )
        if takes(endpoint, event_type, brand_id)
    ]


def takes(endpoint: WebhookEndpoint, event_type: str, brand_id: str | None) -> bool:
    """Whether the endpoint's filters let this event through. Events about no brand in
    particular pass any brand filter."""
    if endpoint.events is not None and event_type not in endpoint.events:
        return False
    return endpoint.brand_ids is None or brand_id is None or brand_id in endpoint.brand_ids


# The events that settle a post's publishing: their `data` lists the post's deliveries too.
POST_OUTCOMES = frozenset(
    {
        WebhookEventType.POST_PUBLISHED.value,
        WebhookEventType.POST_PARTIALLY_PUBLISHED.value,
        WebhookEventType.POST_FAILED.value,
        WebhookEventType.POST_UNKNOWN.value,
    }
)


def emit_for_post(event_type: str, post: Post, **extra: Any) -> WebhookEvent | None:
    """`emit` about a post: `data` is `{"post": {…}}` plus `extra` (e.g. the review `stage`
    and `comment`), and, for the outcomes of its publishing (POST_OUTCOMES), its `deliveries`.

    Posts emit from one place, app/services/lifecycle.py, as they move; other code moves them
    through the lifecycle rather than calling this."""
    endpoints = _endpoints_taking(event_type, post.agency_id, post.brand_id)
    if not endpoints:
        return None  # nothing is read to build a body no one takes
    if event_type in POST_OUTCOMES:
        extra.setdefault("deliveries", _deliveries_of(post))
    data = {"post": post_data(post), **_jsonable(extra)}
    return _record(event_type, post.agency_id, post.brand_id, data, endpoints)


def _deliveries_of(post: Post) -> list[Delivery]:
    scope = tenancy.TenantScope(agency_id=post.agency_id)
    stmt = tenancy.scoped_select(Delivery, scope=scope).where(Delivery.post_id == post.id)
    return list(db.session.scalars(stmt.order_by(Delivery.id)))


def emit_for_account(event_type: str, account: SocialAccount, **extra: Any) -> WebhookEvent | None:
    """`emit` about a social account: `data` is `{"account": {…}}` plus `extra`."""
    return emit(
        event_type,
        agency_id=account.agency_id,
        brand_id=account.brand_id,
        data={"account": account_data(account), **_jsonable(extra)},
    )


def emit_for_delivery(event_type: str, delivery: Delivery, **extra: Any) -> WebhookEvent | None:
    """`emit` about one publishing delivery (a post on one account): `data` is
    `{"delivery": {…}}` plus `extra`."""
    return emit(
        event_type,
        agency_id=delivery.agency_id,
        brand_id=delivery.brand_id,
        data={"delivery": delivery_data(delivery), **_jsonable(extra)},
    )


def post_data(post: Post) -> dict[str, Any]:
    """A post as events show it: what it says and where it stands, not its internal notes."""
    return {
        "id": post.id,
        "brand_id": post.brand_id,
        "status": post.status,
        "approval_stage": post.approval_stage,
        "text": post.text,
        "link": post.link,
        "campaign": post.campaign,
        "account_ids": list(post.account_ids),
        "scheduled_at": dump_datetime(post.scheduled_at),
        "published_at": dump_datetime(post.published_at),
    }


def account_data(account: SocialAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "brand_id": account.brand_id,
        "network": account.network,
        "handle": account.handle,
        "display_name": account.display_name,
        "health": account.health,
        "last_error": account.last_error,
    }


def delivery_data(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "post_id": delivery.post_id,
        "account_id": delivery.account_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "external_id": delivery.external_id,
        "external_url": delivery.external_url,
        "last_error": delivery.last_error,
        "scheduled_for": dump_datetime(delivery.scheduled_for),
        "published_at": dump_datetime(delivery.published_at),
    }


def _jsonable(value: Any) -> Any:
    """Rows and instants in `extra`, as the body shows them."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return dump_datetime(value)
    if isinstance(value, Delivery):
        return delivery_data(value)
    if isinstance(value, Post):
        return post_data(value)
    if isinstance(value, SocialAccount):
        return account_data(value)
    return value


def _record(
    event_type: str,
    agency_id: str,
    brand_id: str | None,
    data: dict[str, Any],
    endpoints: list[WebhookEndpoint],
) -> WebhookEvent:
    now = utcnow()
    webhook_event = WebhookEvent(
        # Made here, not at flush: the id is in the body.
        id=new_id(PREFIXES["webhook_event"]),
        agency_id=agency_id,
        brand_id=brand_id,
        type=event_type,
        created_at=now,
    )
    webhook_event.payload = json.dumps(
        {
            "id": webhook_event.id,
            "type": event_type,
            "timestamp": dump_datetime(now),
            "agency_id": agency_id,
            "brand_id": brand_id,
            "data": data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    session = db.session()
    session.add(webhook_event)
    session.flush()  # before its deliveries: no relationship tells the session the order
    for endpoint in endpoints:
        _new_delivery(webhook_event, endpoint.id, now=now)
    return webhook_event


def _new_delivery(
    webhook_event: WebhookEvent,
    endpoint_id: str,
    *,
    now: datetime,
    redelivery_of: str | None = None,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        agency_id=webhook_event.agency_id,
        endpoint_id=endpoint_id,
        event_id=webhook_event.id,
        event_type=webhook_event.type,
        status=WebhookDeliveryStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        # Enqueued when the transaction commits; the sweep covers a failed enqueue.
        enqueued_at=now,
        redelivery_of=redelivery_of,
        created_at=now,
    )
    session = db.session()
    session.add(delivery)
    session.flush()
    session.info.setdefault(_PENDING, []).append((delivery.agency_id, delivery.id))
    return delivery


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if pending:
        from app.services import webhook_delivery

        for agency_id, delivery_id in pending:
            webhook_delivery.enqueue(agency_id, delivery_id)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


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
    test_event = _record(
        TEST_EVENT_TYPE,
        endpoint.agency_id,
        None,
        {
            "endpoint_id": endpoint.id,
            "message": "A test event from Relais; it needs no action.",
        },
        [],
    )
    delivery = _new_delivery(test_event, endpoint.id, now=now)
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
    delivery = _new_delivery(webhook_event, endpoint.id, now=utcnow(), redelivery_of=original.id)
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
