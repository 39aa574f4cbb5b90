"""An attempt at a delivery and the rows it writes: the compare-and-set that moves the delivery
(`cas`, `settle`), the `DeliveryAttempt` record, the event on the post, and the post's roll-up.

Shared by the publishing jobs (app/services/publishing.py), which take an attempt, and the
outcomes (app/services/publishing_outcomes.py), which settle it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import lazyload

from app import tenancy
from app.extensions import db
from app.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryErrorKind,
    DeliveryStatus,
    Post,
    SocialAccount,
)
from app.models.base import utcnow
from app.services import audit, deliveries, lifecycle

log = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 2000


@dataclass
class Attempt:
    """One try at a delivery, taken (`publishing`) and committed: the rows it works on."""

    delivery: Delivery
    number: int
    started_at: datetime


def cas(
    delivery: Delivery,
    sources: list[DeliveryStatus],
    to: DeliveryStatus,
    *conditions: Any,
    **values: Any,
) -> Delivery | None:
    """`sources → to` for this delivery (and `conditions`), with `values`: the row as it now
    is, read back by the same statement, or None when another process moved it first."""
    return db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(Delivery.id == delivery.id, *conditions),
            sources,
            to,
        )
        .values(**values)
        .returning(Delivery),
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).scalar_one_or_none()


def settle(attempt: Attempt, to: DeliveryStatus, values: dict[str, Any]) -> Delivery | None:
    """`publishing → to` for this attempt only, with `values`; the delivery reloaded, or None
    when another process took it over (the reconciler, after this job's lease ran out)."""
    delivery = cas(
        attempt.delivery,
        [DeliveryStatus.PUBLISHING],
        to,
        Delivery.attempts == attempt.number,
        lease_until=None,
        **values,
    )
    if delivery is None:
        db.session.rollback()
        log.warning(
            "attempt %d of delivery %s ended (%s) after another process took the delivery over",
            attempt.number,
            attempt.delivery.id,
            to.value,
        )
    else:
        lifecycle.announce_delivery(delivery, DeliveryStatus.PUBLISHING.value)
    return delivery


def record_attempt(
    attempt: Attempt,
    action: str,
    outcome: str,
    *,
    kind: DeliveryErrorKind | None = None,
    status_code: int | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    delivery = attempt.delivery
    db.session.add(
        DeliveryAttempt(
            agency_id=delivery.agency_id,
            brand_id=delivery.brand_id,
            delivery_id=delivery.id,
            number=attempt.number,
            action=action,
            outcome=outcome,
            error_kind=kind.value if kind else None,
            status_code=status_code,
            error=error[:ERROR_TEXT_LIMIT] if error else None,
            started_at=attempt.started_at,
            finished_at=utcnow(),
            retry_at=retry_at,
        )
    )


def record_event(delivery: Delivery, action: str, **data: Any) -> None:
    """A delivery's event, on its post (its activity feed shows it): `delivery.published`,
    `delivery.retry_scheduled`, `delivery.failed`, `delivery.unknown`."""
    audit.record(
        action,
        actor=audit.SYSTEM,
        agency_id=delivery.agency_id,
        brand_id=delivery.brand_id,
        target_type="post",
        target_id=delivery.post_id,
        data={
            "delivery_id": delivery.id,
            "account_id": delivery.account_id,
            "attempt": delivery.attempts,
            **{k: v for k, v in data.items() if v is not None},
        },
    )


def roll_up(delivery: Delivery) -> None:
    """The post's status from its deliveries, under a lock on the post: two deliveries of one
    post ending at once must not each roll up without seeing the other."""
    post = db.session.scalars(
        tenancy.scoped_select(Post)
        .where(Post.id == delivery.post_id)
        .options(lazyload("*"))  # its labels, media and variants are not what rolls up
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    deliveries.refresh_post_status(post, actor=audit.SYSTEM)


def network_of(delivery: Delivery) -> str:
    return db.session.scalar(
        tenancy.scoped_select(SocialAccount, SocialAccount.network).where(
            SocialAccount.id == delivery.account_id
        )
    )
