"""What came of a publishing attempt, recorded: `published`, `retry` (with backoff and jitter,
and a 429 holding the account), `fail`, `unknown` (the reconciler asks the network later) and
`unverifiable` (unknown for good: a person must look). Each settles the attempt by
compare-and-set, writes its `DeliveryAttempt` row and the post's event, rolls the post up and
counts the metrics, in one transaction. The table in app/services/publishing.py says which
connector answer leads where.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_

from app import metrics, tenancy
from app.extensions import db
from app.models import Delivery, DeliveryErrorKind, DeliveryStatus, SocialAccount
from app.models.base import utcnow
from app.networks.base import Published, TransientNetworkError
from app.services import account_health
from app.services.publishing_attempts import (
    ERROR_TEXT_LIMIT,
    Attempt,
    record_attempt,
    record_event,
    roll_up,
    settle,
)

log = logging.getLogger(__name__)


def published(
    attempt: Attempt, account: SocialAccount, action: str, post: Published, *, found: bool
) -> str:
    now = utcnow()
    delivery = settle(
        attempt,
        DeliveryStatus.PUBLISHED,
        {
            "external_id": post.external_id,
            "external_url": post.url,
            "published_at": post.published_at or now,
            "last_error": None,
            "last_error_kind": None,
            "last_status_code": None,
            "next_attempt_at": None,
        },
    )
    if delivery is None:
        return "skipped"
    outcome = "found" if found else "published"
    record_attempt(attempt, action, outcome)
    record_event(
        delivery,
        "delivery.published",
        network=account.network,
        external_id=post.external_id,
        url=post.url,
        found_by_reconciler=found or None,
    )
    roll_up(delivery)
    db.session.commit()
    scheduled = delivery.scheduled_for or attempt.started_at
    metrics.delivery_published(account.network, (delivery.published_at - scheduled).total_seconds())
    log.info("published on %s as %s%s", account.network, post.external_id, " (found)" * found)
    return outcome


def _backoff(attempts: int, retry_after: int | None) -> timedelta:
    """Exponential, with jitter (half of it random, so a burst of failures spreads out), and
    never sooner than the network asked."""
    config = current_app.config
    ceiling = min(
        config["PUBLISH_RETRY_MAX_SECONDS"],
        config["PUBLISH_RETRY_BASE_SECONDS"] * 2 ** max(0, attempts - 1),
    )
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret
    return timedelta(seconds=max(delay, retry_after or 0))


def retry(
    attempt: Attempt,
    account: SocialAccount,
    action: str,
    exc: TransientNetworkError,
    *,
    kind: DeliveryErrorKind | None = None,
) -> str:
    throttled = exc.status == 429
    kind = kind or (DeliveryErrorKind.RATE_LIMITED if throttled else DeliveryErrorKind.TRANSIENT)
    if attempt.number >= current_app.config["PUBLISH_MAX_ATTEMPTS"]:
        return fail(
            attempt,
            account,
            action,
            f"Gave up after {attempt.number} attempts; the last one: {exc}",
            kind,
            exc.status,
        )
    retry_at = utcnow() + _backoff(attempt.number, exc.retry_after)
    delivery = settle(
        attempt,
        DeliveryStatus.SCHEDULED,
        {
            "next_attempt_at": retry_at,
            "last_error": str(exc)[:ERROR_TEXT_LIMIT],
            "last_error_kind": kind.value,
            "last_status_code": exc.status,
        },
    )
    if delivery is None:
        return "skipped"
    if throttled:
        _hold_account(account, retry_at)
    record_attempt(
        attempt,
        action,
        "retry",
        kind=kind,
        status_code=exc.status,
        error=str(exc),
        retry_at=retry_at,
    )
    record_event(
        delivery,
        "delivery.retry_scheduled",
        network=account.network,
        error=str(exc)[:ERROR_TEXT_LIMIT],
        error_kind=kind.value,
        status_code=exc.status,
        retry_at=retry_at.isoformat(),
    )
    roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(account.network, "retry")
    log.warning("attempt %d failed (%s); retrying at %s", attempt.number, exc, retry_at.isoformat())
    return "retry"


def _hold_account(account: SocialAccount, until: datetime) -> None:
    """A 429 on this account: none of its deliveries goes out before `until` (the queued ones
    are handed back by their jobs, the scheduled ones wait); other accounts carry on."""
    db.session.execute(
        tenancy.scoped_update(SocialAccount)
        .where(
            SocialAccount.id == account.id,
            or_(
                SocialAccount.rate_limited_until.is_(None),
                SocialAccount.rate_limited_until < until,
            ),
        )
        .values(rate_limited_until=until)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        tenancy.scoped_update(Delivery)
        .where(
            Delivery.account_id == account.id,
            Delivery.status == DeliveryStatus.SCHEDULED.value,
            Delivery.next_attempt_at < until,
        )
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )


def fail(
    attempt: Attempt,
    account: SocialAccount,
    action: str,
    message: str,
    kind: DeliveryErrorKind,
    status_code: int | None,
) -> str:
    delivery = settle(
        attempt,
        DeliveryStatus.FAILED,
        {
            "next_attempt_at": None,
            "last_error": message[:ERROR_TEXT_LIMIT],
            "last_error_kind": kind.value,
            "last_status_code": status_code,
        },
    )
    if delivery is None:
        return "skipped"
    if kind == DeliveryErrorKind.CREDENTIALS:
        account_health.mark_needs_reconnect(account, message)
    record_attempt(attempt, action, "failed", kind=kind, status_code=status_code, error=message)
    record_event(
        delivery,
        "delivery.failed",
        network=account.network,
        error=message[:ERROR_TEXT_LIMIT],
        error_kind=kind.value,
        status_code=status_code,
    )
    roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(account.network, "failed")
    log.error("delivery failed (%s): %s", kind.value, message)
    return "failed"


def unknown(
    attempt: Attempt,
    account: SocialAccount,
    action: str,
    message: str,
    status_code: int | None,
    retry_after: int | None,
) -> str:
    config = current_app.config
    if attempt.number >= config["PUBLISH_MAX_ATTEMPTS"]:
        return unverifiable(
            attempt,
            account,
            f"No answer after {attempt.number} attempts ({message}); the network was never "
            "able to say whether the post exists.",
        )
    delay = retry_after if retry_after is not None else config["PUBLISH_RECONCILE_DELAY_SECONDS"]
    check_at = utcnow() + timedelta(seconds=delay)
    delivery = settle(
        attempt,
        DeliveryStatus.UNKNOWN,
        {
            "next_attempt_at": check_at,
            "last_error": message[:ERROR_TEXT_LIMIT],
            "last_error_kind": DeliveryErrorKind.UNKNOWN.value,
            "last_status_code": status_code,
        },
    )
    if delivery is None:
        return "skipped"
    record_attempt(
        attempt,
        action,
        "unknown",
        kind=DeliveryErrorKind.UNKNOWN,
        status_code=status_code,
        error=message,
        retry_at=check_at,
    )
    record_event(
        delivery,
        "delivery.unknown",
        network=account.network,
        error=message[:ERROR_TEXT_LIMIT],
        check_at=check_at.isoformat(),
    )
    roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(account.network, "unknown")
    log.warning("outcome unknown (%s); the network is asked at %s", message, check_at.isoformat())
    return "unknown"


def unverifiable(attempt: Attempt, account: SocialAccount, reason: str) -> str:
    """Unknown for good: nothing will send it again, and a person must look."""
    message = (
        f"Relais cannot tell whether this post was published on {account.network} ({reason}). "
        f"Check the account {account.handle} on {account.network}: Relais will not send it "
        "again by itself, so if the post is not there, post it anew."
    )
    delivery = settle(
        attempt,
        DeliveryStatus.UNKNOWN,
        {
            "next_attempt_at": None,
            "last_error": message[:ERROR_TEXT_LIMIT],
            "last_error_kind": DeliveryErrorKind.UNVERIFIABLE.value,
            "last_status_code": None,
        },
    )
    if delivery is None:
        return "skipped"
    record_attempt(
        attempt, "reconcile", "unknown", kind=DeliveryErrorKind.UNVERIFIABLE, error=message
    )
    record_event(delivery, "delivery.unknown", network=account.network, error=message)
    roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(account.network, "unknown")
    log.error("outcome cannot be checked: %s", reason)
    return "unknown"
