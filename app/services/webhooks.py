"""Outgoing webhook events: what the rest of the app emits, and the body each endpoint gets.

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
- The endpoints (created, changed, secrets rotated, disabled): app/services/webhook_endpoints.py.
  Sending: app/services/webhook_delivery.py; when, and again: app/services/webhook_schedule.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app import tenancy
from app.extensions import db
from app.fields import dump_datetime
from app.ids import PREFIXES, new_id
from app.models import (
    Delivery,
    Post,
    SocialAccount,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)
from app.models.base import utcnow
from app.services import webhook_schedule

EVENT_TYPES = frozenset(t.value for t in WebhookEventType)
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
    return record_event(event_type, agency_id, brand_id, data, endpoints)


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
    return record_event(event_type, post.agency_id, post.brand_id, data, endpoints)


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


def record_event(
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
        new_delivery(webhook_event, endpoint.id, now=now)
    return webhook_event


def new_delivery(
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
        for agency_id, delivery_id in pending:
            webhook_schedule.enqueue(agency_id, delivery_id)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
