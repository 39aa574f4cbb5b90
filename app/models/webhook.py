"""Outgoing webhooks: the agency's endpoints, the events sent to them, and each delivery.

An event is written once, in the transaction of the change it announces, with the exact JSON
that every endpoint receives; a delivery is one event on its way to one endpoint, with its
attempts (app/services/webhooks.py writes them, app/services/webhook_delivery.py sends them).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import AgencyScoped, Base, Timestamps


class WebhookEventType(StrEnum):
    POST_SCHEDULED = "post.scheduled"
    POST_PUBLISHED = "post.published"
    POST_PARTIALLY_PUBLISHED = "post.partially_published"
    POST_FAILED = "post.failed"
    POST_UNKNOWN = "post.unknown"
    POST_APPROVAL_REQUESTED = "post.approval_requested"
    POST_APPROVED = "post.approved"
    POST_REJECTED = "post.rejected"
    ACCOUNT_NEEDS_RECONNECT = "account.needs_reconnect"
    DELIVERY_FAILED = "delivery.failed"


# Sent only by `POST /v1/webhook-endpoints/{id}/test`, to that endpoint alone, whatever its
# filters: not a type an endpoint subscribes to.
TEST_EVENT_TYPE = "webhook.test"


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its first attempt, or for its next one (next_attempt_at)
    SENDING = "sending"  # a worker claimed it and is talking to the endpoint
    SUCCEEDED = "succeeded"  # the endpoint answered 2xx
    FAILED = "failed"  # every attempt failed, or the endpoint answered 410 Gone
    CANCELLED = "cancelled"  # the endpoint was disabled before it was sent


class DisabledReason(StrEnum):
    MANUAL = "manual"  # someone set `enabled: false`
    GONE = "gone"  # the endpoint answered 410 Gone
    FAILING = "failing"  # it failed for longer than WEBHOOK_DISABLE_AFTER_SECONDS


class WebhookEndpoint(AgencyScoped, Timestamps, Base):
    """An agency's URL that receives its events, signed per the Standard Webhooks spec.

    The signing secrets are kept encrypted (with the credentials keys), not hashed: we need
    them back to sign. After a rotation the previous secret still signs, beside the new one,
    until `previous_secret_expires_at`.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("webhook_endpoint")
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    # None: every event type (those added later too); otherwise only these.
    events: Mapped[list[str] | None]
    # None: every brand of the agency; otherwise only events of these brands.
    brand_ids: Mapped[list[str] | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    disabled_at: Mapped[datetime | None]
    # {"current": "whsec_…", "previous": "whsec_…" | None}, encrypted (app.security.crypto).
    secrets_encrypted: Mapped[bytes] = mapped_column(LargeBinary, info={"secret": True})
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when no attempt succeeded (None: the last attempt succeeded, or none was made):
    # what auto-disabling is judged on.
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_by_user_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime | None]
    # Bumped on every change, by people and by workers (a disabled endpoint changes its ETag).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __label__ = "webhook endpoint"


class WebhookEvent(AgencyScoped, Timestamps, Base):
    """One event, as every endpoint receives it: `payload` is the exact body sent (and
    signed), and `id` its `webhook-id`, the same on every attempt and redelivery."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("webhook_event")
    )
    # None for events about the agency as a whole (the test event).
    brand_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("brands.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[str] = mapped_column(Text)


class WebhookDelivery(AgencyScoped, Timestamps, Base):
    """One event on its way to one endpoint: its attempts and the last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The sweep looks for pending deliveries that are due, and claims left by dead workers.
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # An endpoint's delivery log, newest last by id.
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("webhook_delivery")
    )
    endpoint_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    # Denormalized from the event, so the log reads one table.
    event_type: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(10), default=WebhookDeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    # When a job was last put on the queue for it: the sweep enqueues a due delivery again only
    # when that was before its current attempt was due, or long enough ago to have been lost.
    enqueued_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    succeeded_at: Mapped[datetime | None]
    # The delivery this one sends again (`…/redeliver`), if any.
    redelivery_of: Mapped[str | None] = mapped_column(String(40))
