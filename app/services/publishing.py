"""Publishing one delivery: what the jobs `publish_delivery` and `reconcile_delivery` do.

A job carries a delivery id and the agency id the dispatcher read with it
(app/services/dispatcher.py). It enters that agency before loading anything: a delivery of
another agency is simply not found, and nothing is touched.

**Exactly once.** Every move of a delivery is a compare-and-set (`lifecycle.delivery_cas`):

1. `queued → publishing` (with `attempts + 1` and a lease) is committed *before* the network is
   called. Only one job can make it; a delivery cancelled, moved or edited meanwhile is no
   longer `queued`, and the job leaves it. The job first waits out the fraction of a second
   left before the delivery is due (the dispatcher claims slightly ahead).
2. The network gets the delivery id as its idempotency key (Mastodon's `Idempotency-Key`,
   Bluesky's record key), and the instant of the first attempt, which dates Bluesky's key and
   never changes between attempts.
3. What came of it is recorded by `publishing → …` for *this* attempt only (`attempts` in the
   condition), with one `DeliveryAttempt` row, audit events on the post, the post's roll-up and
   the metrics, in one transaction:

   | the connector                | the delivery                                                  |
   |------------------------------|---------------------------------------------------------------|
   | `Published`                  | `published`, with the network's id and URL                    |
   | `TransientNetworkError`      | `scheduled` again after a backoff with jitter, never sooner   |
   |                              | than Retry-After; `failed` after PUBLISH_MAX_ATTEMPTS. A 429   |
   |                              | holds every delivery of that account until then, and no other |
   | `OutcomeUnknown`, a crash    | `unknown`: the reconciler asks the network later              |
   | `ContentRejected`, 4xx       | `failed`, with the network's own message                      |
   | `CredentialsRejected`        | `failed`; the account `needs_reconnect` and the agency is told|
   | `TokenExpired`               | the account's tokens are refreshed and stored; sent again     |

**The reconciler** (`reconcile`) takes an `unknown` delivery (a `publishing` one whose worker
died becomes `unknown` first: `mark_worker_lost`) as `publishing` again, asks the network
(`find_existing`, from the first attempt on), and records the post it finds, or publishes
again with the same key. A network that cannot be asked leaves the delivery `unknown`, with a
message saying what a person must check, unless its own idempotency key still protects a
second send. Nothing is ever sent again blindly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_

from app import logs, metrics, tenancy
from app.extensions import db
from app.models import AccountHealth, Delivery, DeliveryErrorKind, DeliveryStatus, SocialAccount
from app.models.base import utcnow
from app.networks import connector_for
from app.networks.base import (
    ContentRejected,
    CredentialsRejected,
    NetworkError,
    OutcomeUnknown,
    TransientNetworkError,
)
from app.services import lifecycle
from app.services import publishing_outcomes as outcomes
from app.services.publishing_attempts import Attempt, cas, network_of, record_event, roll_up
from app.services.publishing_request import (
    CannotSend,
    Unverifiable,
    build_request,
    network_account,
    send,
)

log = logging.getLogger(__name__)

# A job may find its delivery due a little later than the dispatcher's lookahead (the claim
# ran late, the job waited in its queue); it waits at most this much more, never longer: a
# delivery due later than that goes back to `scheduled`.
_WAIT_MARGIN = timedelta(seconds=1)
# Accounts whose credentials are known dead: their deliveries fail without a network call.
_CANNOT_POST = {AccountHealth.NEEDS_RECONNECT.value, AccountHealth.REVOKED.value}


# -- the jobs --------------------------------------------------------------------------------------


def publish(delivery_id: str, agency_id: str) -> str:
    """The job `publish_delivery`: take the queued delivery and publish it. Returns what it did:
    `published`, `retry`, `failed`, `unknown`, or why it did nothing (`not_found`: not a
    delivery of this agency; `skipped`: not queued any more; `released`: not to be sent yet)."""
    return _in_tenant(agency_id, delivery_id, _publish)


def reconcile(delivery_id: str, agency_id: str) -> str:
    """The job `reconcile_delivery`: find out whether an unknown delivery's post exists, and
    record it, or publish it. Returns as `publish` does (`found` when the post was there)."""
    return _in_tenant(agency_id, delivery_id, _reconcile)


def _in_tenant(agency_id: str, delivery_id: str, work: Any) -> str:
    tenancy.enter_agency(agency_id)
    try:
        delivery = db.session.scalars(
            tenancy.scoped_select(Delivery).where(Delivery.id == delivery_id)
        ).first()
        if delivery is None:
            log.warning("delivery %s is not one of agency %s: nothing done", delivery_id, agency_id)
            return "not_found"
        with logs.bound(
            delivery_id=delivery.id,
            post_id=delivery.post_id,
            brand_id=delivery.brand_id,
            account_id=delivery.account_id,
        ):
            return work(delivery)
    finally:
        db.session.rollback()
        tenancy.set_scope(tenancy.NO_SCOPE)


def _publish(delivery: Delivery) -> str:
    if delivery.status != DeliveryStatus.QUEUED.value:
        return "skipped"  # cancelled, moved or edited since its claim, or taken by another job
    config = current_app.config
    max_wait = timedelta(seconds=config["PUBLISH_LOOKAHEAD_SECONDS"]) + _WAIT_MARGIN
    due = delivery.next_attempt_at or utcnow()
    wait = due - utcnow()
    if wait > max_wait:
        return _release(delivery, due, "due later than its claim allowed")
    db.session.commit()  # hold no transaction while waiting (a read: nothing to write)
    if wait > timedelta(0):
        time.sleep(wait.total_seconds())
    account = _account(delivery.account_id)
    now = utcnow()
    if account.rate_limited_until is not None and account.rate_limited_until > now:
        return _release(delivery, account.rate_limited_until, "its account is rate-limited")
    attempt = _take(delivery, [DeliveryStatus.QUEUED], due_by=now)
    if attempt is None:
        return "skipped"
    return _attempt(attempt, account, reconciling=False)


def _reconcile(delivery: Delivery) -> str:
    if delivery.status != DeliveryStatus.UNKNOWN.value:
        return "skipped"
    account = _account(delivery.account_id)
    attempt = _take(delivery, [DeliveryStatus.UNKNOWN], due_by=None)
    if attempt is None:
        return "skipped"
    return _attempt(attempt, account, reconciling=True)


# -- taking a delivery -----------------------------------------------------------------------------


def _account(account_id: str) -> SocialAccount:
    return db.session.scalars(
        tenancy.scoped_select(SocialAccount).where(SocialAccount.id == account_id)
    ).one()


def _release(delivery: Delivery, until: datetime, why: str) -> str:
    """Hand a claimed delivery back (`queued → scheduled`), due at `until`; nothing was sent."""
    moved = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(Delivery.id == delivery.id),
            [DeliveryStatus.QUEUED],
            DeliveryStatus.SCHEDULED,
        )
        .values(next_attempt_at=until, lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if moved:
        log.info("delivery handed back until %s: %s", until.isoformat(), why)
    return "released" if moved else "skipped"


def _take(
    delivery: Delivery, sources: list[DeliveryStatus], *, due_by: datetime | None
) -> Attempt | None:
    """`sources → publishing`, counting one attempt, committed with the post's roll-up; None
    if another process moved the delivery first."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["PUBLISH_LEASE_SECONDS"])
    condition = []
    if due_by is not None:
        # Never before its time, whatever the clock of the process that claimed it said.
        condition.append(
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= due_by)
        )
    taken = cas(
        delivery,
        sources,
        DeliveryStatus.PUBLISHING,
        *condition,
        attempts=Delivery.attempts + 1,
        first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
        last_attempt_at=now,
        lease_until=now + lease,
        next_attempt_at=None,
    )
    if taken is None:
        db.session.rollback()
        return None
    roll_up(taken)
    db.session.commit()
    return Attempt(taken, taken.attempts, now)


def mark_worker_lost(delivery_id: str, agency_id: str, now: datetime) -> bool:
    """The dispatcher found this publishing delivery's lease run out: the worker that took it
    died (its job renews the lease while it lives, `_lease_kept`). `publishing → unknown`, due
    for the reconciler at once, in the delivery's own agency; False when the lease was renewed
    or the attempt ended meanwhile."""
    tenancy.enter_agency(agency_id)
    try:
        delivery = db.session.scalars(
            tenancy.scoped_select(Delivery).where(Delivery.id == delivery_id)
        ).first()
        if delivery is None:
            return False
        with logs.bound(
            delivery_id=delivery.id,
            post_id=delivery.post_id,
            brand_id=delivery.brand_id,
            account_id=delivery.account_id,
        ):
            moved = cas(
                delivery,
                [DeliveryStatus.PUBLISHING],
                DeliveryStatus.UNKNOWN,
                Delivery.attempts == delivery.attempts,
                Delivery.lease_until < now,
                lease_until=None,
                next_attempt_at=now,
                last_error_kind=DeliveryErrorKind.UNKNOWN.value,
                last_error=(
                    "The worker publishing this delivery stopped before the network answered; "
                    "whether the post was made is being checked."
                ),
            )
            if moved is None:
                return False
            record_event(delivery, "delivery.unknown", error=delivery.last_error)
            roll_up(delivery)
            db.session.commit()
            metrics.delivery_attempted(network_of(delivery), "unknown")
            log.warning("the worker publishing this delivery died; reconciling")
            return True
    finally:
        db.session.rollback()
        tenancy.set_scope(tenancy.NO_SCOPE)


# -- one attempt -----------------------------------------------------------------------------------


def _attempt(attempt: Attempt, account: SocialAccount, *, reconciling: bool) -> str:
    delivery = attempt.delivery
    connector = connector_for(account.network)
    action = "reconcile" if reconciling else "publish"
    try:
        if account.health in _CANNOT_POST:
            raise CredentialsRejected(
                f"the account's connection is '{account.health}'; reconnect it"
                + (f" ({account.last_error})" if account.last_error else "")
            )
        request = build_request(delivery, account)
        credentials = network_account(account)
        db.session.commit()  # no transaction open during the network calls (reads only)
        with _lease_kept(attempt):
            found, published = send(connector, account, credentials, request, delivery, action)
    except TransientNetworkError as exc:
        return outcomes.retry(attempt, account, action, exc)
    except OutcomeUnknown as exc:
        return outcomes.unknown(attempt, account, action, str(exc), exc.status, exc.retry_after)
    except CredentialsRejected as exc:
        return outcomes.fail(
            attempt, account, action, str(exc), DeliveryErrorKind.CREDENTIALS, exc.status
        )
    except ContentRejected as exc:
        return outcomes.fail(
            attempt, account, action, str(exc), DeliveryErrorKind.REJECTED, exc.status
        )
    except Unverifiable as exc:
        return outcomes.unverifiable(attempt, account, str(exc))
    except NetworkError as exc:  # refused for a reason retrying will not change
        return outcomes.fail(
            attempt, account, action, str(exc), DeliveryErrorKind.REJECTED, exc.status
        )
    except CannotSend as exc:
        if exc.permanent:
            return outcomes.fail(attempt, account, action, str(exc), exc.kind, None)
        return outcomes.retry(
            attempt, account, action, TransientNetworkError(str(exc)), kind=exc.kind
        )
    except Exception as exc:  # noqa: BLE001 - a bug, maybe after the post was sent: ask first
        log.exception("publishing failed unexpectedly; the delivery is reconciled")
        return outcomes.unknown(
            attempt, account, action, f"{type(exc).__name__}: {exc}", None, None
        )
    return outcomes.published(attempt, account, action, published, found=found)


@contextmanager
def _lease_kept(attempt: Attempt) -> Iterator[None]:
    """Renew the delivery's lease while the network calls last (a video the network processes
    for minutes, say), from a thread with its own connection: the dispatcher then knows that
    a publishing delivery whose lease ran out has lost its worker, whatever kind of worker it
    was, and reconciles it. A publish shorter than a third of the lease renews nothing."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    lease = timedelta(seconds=app.config["PUBLISH_LEASE_SECONDS"])
    delivery = attempt.delivery
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            with app.app_context():
                tenancy.enter_agency(delivery.agency_id)
                try:
                    db.session.execute(
                        tenancy.scoped_update(Delivery)
                        .where(
                            Delivery.id == delivery.id,
                            Delivery.status == DeliveryStatus.PUBLISHING.value,
                            Delivery.attempts == attempt.number,
                        )
                        .values(lease_until=utcnow() + lease)
                        .execution_options(synchronize_session=False)
                    )
                    db.session.commit()
                except Exception:  # noqa: BLE001 - the next beat tries again
                    log.warning("could not renew the lease of delivery %s", delivery.id)
                    db.session.rollback()

    keeper = threading.Thread(target=renew, name=f"lease-{delivery.id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
