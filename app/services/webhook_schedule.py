"""When webhook deliveries are sent: the retry schedule, the enqueueing, and the sweeps.

- `retry_delay`: after a failed attempt, WEBHOOK_RETRY_BASE_SECONDS × 3^(n-1) with jitter,
  `Retry-After` honoured, up to the cap; `schedule_bounds` tabulates it.
- The database is the source of truth: the first attempt is enqueued when the event's
  transaction commits (`enqueue`, app/services/webhooks.py); retries, and whatever Redis lost,
  are enqueued by `enqueue_due`, a periodic sweep, when due. A job that runs twice, or late,
  finds nothing to claim (app/services/webhook_delivery.py).
- `purge_old` forgets events and their delivery logs after WEBHOOK_LOG_RETENTION_DAYS.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, exists, or_, select, update

from app import queue, tenancy
from app.extensions import db
from app.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEvent
from app.models.base import utcnow

log = logging.getLogger("relais.webhooks")

DELIVER_JOB = "workers.jobs.webhooks.deliver_webhook"
# A delivery claimed this long ago and still `sending` belongs to a worker that died.
CLAIM_TIMEOUT = timedelta(minutes=5)
# A due delivery whose job was enqueued this long ago and has not run is enqueued again
# (Redis lost it). Not shorter than CLAIM_TIMEOUT: a claimed delivery is enqueued once more.
REENQUEUE_AFTER = timedelta(minutes=5)
# Beyond every timeout of one attempt: RQ stops a job that hangs anyway.
JOB_TIMEOUT_SECONDS = 120
# Each wait is its computed value times a factor drawn in this range.
JITTER = (0.8, 1.2)
_PENDING = WebhookDeliveryStatus.PENDING.value
_SENDING = WebhookDeliveryStatus.SENDING.value


# -- the schedule -----------------------------------------------------------------------------


def retry_delay(
    failed_attempts: int,
    *,
    retry_after: float | None = None,
    rand: Callable[[float, float], float] = random.uniform,
) -> timedelta:
    """How long to wait after the `failed_attempts`-th failed attempt (1 for the first).

    WEBHOOK_RETRY_BASE_SECONDS × 3^(n-1), at most WEBHOOK_RETRY_MAX_DELAY_SECONDS, times a
    random factor in JITTER so that the deliveries of one outage do not come back together.
    A `Retry-After` the endpoint sent is honoured when longer, up to the same cap.
    """
    config = current_app.config
    base = float(config["WEBHOOK_RETRY_BASE_SECONDS"])
    cap = float(config["WEBHOOK_RETRY_MAX_DELAY_SECONDS"])
    exponent = max(failed_attempts - 1, 0)
    # min() before the power's result can grow past a float (many attempts configured).
    delay = cap if exponent > 60 else min(cap, base * 3**exponent)
    delay *= rand(*JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return timedelta(seconds=delay)


def schedule_bounds() -> list[tuple[float, float]]:
    """(shortest, longest) wait after each failed attempt but the last, in seconds: what the
    README's table and the tests read."""
    config = current_app.config
    bounds = []
    for n in range(1, config["WEBHOOK_MAX_ATTEMPTS"]):
        low = retry_delay(n, rand=lambda a, b: a).total_seconds()
        high = retry_delay(n, rand=lambda a, b: b).total_seconds()
        bounds.append((low, high))
    return bounds


# -- enqueueing ---------------------------------------------------------------------------------


def enqueue(agency_id: str, delivery_id: str) -> None:
    try:
        queue.enqueue(
            DELIVER_JOB,
            agency_id,
            delivery_id,
            queue_name=queue.WEBHOOKS,
            job_id=f"webhook-{delivery_id}",
            job_timeout=JOB_TIMEOUT_SECONDS,
        )
    except Exception:  # noqa: BLE001 - the delivery is safe in the database; the sweep enqueues it
        log.warning(
            "could not enqueue webhook delivery %s (agency %s); the sweep will",
            delivery_id,
            agency_id,
            exc_info=True,
        )


@tenancy.system_lookup(tenancy.SystemLookup.DISPATCHER)
def enqueue_due(*, now: datetime | None = None, batch: int = 1000) -> int:
    """Enqueue what is due and not on the queue: retries whose time has come, first attempts
    whose job Redis lost, deliveries a dead worker claimed. Returns how many."""
    now = now or utcnow()
    lost = now - REENQUEUE_AFTER
    with tenancy.system_scope():
        due = db.session.execute(
            select(WebhookDelivery.agency_id, WebhookDelivery.id)
            .where(
                or_(
                    and_(
                        WebhookDelivery.status == _PENDING,
                        WebhookDelivery.next_attempt_at <= now,
                        or_(
                            WebhookDelivery.enqueued_at.is_(None),
                            WebhookDelivery.enqueued_at < WebhookDelivery.next_attempt_at,
                            WebhookDelivery.enqueued_at < lost,
                        ),
                    ),
                    and_(
                        WebhookDelivery.status == _SENDING,
                        WebhookDelivery.claimed_at < now - CLAIM_TIMEOUT,
                        WebhookDelivery.enqueued_at < lost,
                    ),
                )
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(batch)
        ).all()
        if due:
            db.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([delivery_id for _, delivery_id in due]))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
    for agency_id, delivery_id in due:
        enqueue(agency_id, delivery_id)
    return len(due)


# -- housekeeping -------------------------------------------------------------------------------


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def purge_old(*, now: datetime | None = None) -> int:
    """Forget events (and their delivery logs) older than WEBHOOK_LOG_RETENTION_DAYS, unless
    one of their deliveries is still being attempted. Returns how many events."""
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["WEBHOOK_LOG_RETENTION_DAYS"])
    active = exists().where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.status.in_([_PENDING, _SENDING]),
    )
    with tenancy.system_scope():
        result = db.session.execute(
            delete(WebhookEvent)
            .where(WebhookEvent.created_at < cutoff, ~active)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return result.rowcount or 0
