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

**The reconciler** (`reconcile`) takes an `unknown` delivery (or a `publishing` one whose worker
died: the dispatcher hands those over) as `publishing` again, asks the network
(`find_existing`, from the first attempt on), and records the post it finds, or publishes
again with the same key. A network that cannot be asked leaves the delivery `unknown`, with a
message saying what a person must check, unless its own idempotency key still protects a
second send. Nothing is ever sent again blindly.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_

from app import logs, metrics, tenancy
from app.extensions import db
from app.models import (
    AccountHealth,
    Delivery,
    DeliveryAttempt,
    DeliveryErrorKind,
    DeliveryStatus,
    Media,
    Post,
    SocialAccount,
)
from app.models.base import utcnow
from app.networks import connector_for
from app.networks.base import (
    Connector,
    ContentRejected,
    CredentialsRejected,
    MediaItem,
    NetworkAccount,
    NetworkError,
    NotSupported,
    OutcomeUnknown,
    Published,
    PublishRequest,
    TokenExpired,
    TransientNetworkError,
)
from app.security import crypto
from app.services import account_health, audit, deliveries, lifecycle, token_refresh
from app.services.accounts import credentials_of
from app.storage import get_storage

log = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 2000
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
    if delivery.status == DeliveryStatus.PUBLISHING.value:
        # Handed over by the dispatcher: the job that took it is gone (its worker died while
        # the network had the post, perhaps). Unknown, then asked like any other.
        if not _worker_died(delivery):
            return "skipped"
        db.session.refresh(delivery)
    if delivery.status != DeliveryStatus.UNKNOWN.value:
        return "skipped"
    account = _account(delivery.account_id)
    attempt = _take(delivery, [DeliveryStatus.UNKNOWN], due_by=None)
    if attempt is None:
        return "skipped"
    return _attempt(attempt, account, reconciling=True)


# -- taking a delivery -----------------------------------------------------------------------------


@dataclass
class _Attempt:
    """One try at a delivery, taken (`publishing`) and committed: the rows it works on."""

    delivery: Delivery
    number: int
    started_at: datetime


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
) -> _Attempt | None:
    """`sources → publishing`, counting one attempt, committed with the post's roll-up; None
    if another process moved the delivery first."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["PUBLISH_LEASE_SECONDS"])
    condition = [Delivery.id == delivery.id]
    if due_by is not None:
        # Never before its time, whatever the clock of the process that claimed it said.
        condition.append(
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= due_by)
        )
    number = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(*condition), sources, DeliveryStatus.PUBLISHING
        )
        .values(
            attempts=Delivery.attempts + 1,
            first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
            last_attempt_at=now,
            lease_until=now + lease,
            next_attempt_at=None,
        )
        .returning(Delivery.attempts)
        .execution_options(synchronize_session=False)
    ).scalar()
    if number is None:
        db.session.rollback()
        return None
    db.session.refresh(delivery)
    _roll_up(delivery)
    db.session.commit()
    return _Attempt(delivery, number, now)


def _worker_died(delivery: Delivery) -> bool:
    """`publishing → unknown` for the attempt the dispatcher found abandoned; False if that
    attempt ended (or another took over) in the meantime."""
    moved = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(
                Delivery.id == delivery.id, Delivery.attempts == delivery.attempts
            ),
            [DeliveryStatus.PUBLISHING],
            DeliveryStatus.UNKNOWN,
        )
        .values(
            lease_until=None,
            next_attempt_at=utcnow(),
            last_error_kind=DeliveryErrorKind.UNKNOWN.value,
            last_error=(
                "The worker publishing this delivery stopped before the network answered; "
                "whether the post was made is being checked."
            ),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        db.session.rollback()
        return False
    db.session.refresh(delivery)
    _record_event(delivery, "delivery.unknown", error=delivery.last_error)
    _roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(_network_of(delivery), "unknown")
    return True


def _roll_up(delivery: Delivery) -> None:
    """The post's status from its deliveries, under a lock on the post: two deliveries of one
    post ending at once must not each roll up without seeing the other."""
    post = db.session.scalars(
        tenancy.scoped_select(Post)
        .where(Post.id == delivery.post_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    deliveries.refresh_post_status(post, actor=audit.SYSTEM)


def _network_of(delivery: Delivery) -> str:
    return db.session.scalar(
        tenancy.scoped_select(SocialAccount, SocialAccount.network).where(
            SocialAccount.id == delivery.account_id
        )
    )


# -- one attempt -----------------------------------------------------------------------------------


class _CannotSend(Exception):
    """Something on our side keeps this attempt from reaching the network."""

    def __init__(self, message: str, kind: DeliveryErrorKind, *, permanent: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent


def _attempt(attempt: _Attempt, account: SocialAccount, *, reconciling: bool) -> str:
    delivery = attempt.delivery
    connector = connector_for(account.network)
    action = "reconcile" if reconciling else "publish"
    try:
        if account.health in _CANNOT_POST:
            raise CredentialsRejected(
                f"the account's connection is '{account.health}'; reconnect it"
                + (f" ({account.last_error})" if account.last_error else "")
            )
        request = _request(delivery, account)
        network_account = _network_account(account)
        db.session.commit()  # no transaction open during the network calls (reads only)
        found, published = _send(connector, account, network_account, request, delivery, action)
    except TransientNetworkError as exc:
        return _retry(attempt, account, action, exc)
    except OutcomeUnknown as exc:
        return _unknown(attempt, account, action, str(exc), exc.status, exc.retry_after)
    except CredentialsRejected as exc:
        return _fail(attempt, account, action, str(exc), DeliveryErrorKind.CREDENTIALS, exc.status)
    except ContentRejected as exc:
        return _fail(attempt, account, action, str(exc), DeliveryErrorKind.REJECTED, exc.status)
    except _Unverifiable as exc:
        return _unverifiable(attempt, account, str(exc))
    except NetworkError as exc:  # refused for a reason retrying will not change
        return _fail(attempt, account, action, str(exc), DeliveryErrorKind.REJECTED, exc.status)
    except _CannotSend as exc:
        if exc.permanent:
            return _fail(attempt, account, action, str(exc), exc.kind, None)
        return _retry(attempt, account, action, TransientNetworkError(str(exc)), kind=exc.kind)
    except Exception as exc:  # noqa: BLE001 - a bug, maybe after the post was sent: ask first
        log.exception("publishing failed unexpectedly; the delivery is reconciled")
        return _unknown(attempt, account, action, f"{type(exc).__name__}: {exc}", None, None)
    return _published(attempt, account, action, published, found=found)


class _Unverifiable(Exception):
    """The network cannot tell whether an earlier try made the post, and its idempotency key
    no longer protects a second one: a person must look."""


def _send(
    connector: Connector,
    account: SocialAccount,
    network_account: NetworkAccount,
    request: PublishRequest,
    delivery: Delivery,
    action: str,
) -> tuple[bool, Published]:
    """(found, the post): look for an earlier try's post where one may exist, else publish.
    An expired token is refreshed once, and the call made again."""
    try:
        return _look_then_publish(connector, network_account, request, delivery, action)
    except TokenExpired:
        network_account = _refreshed(account, network_account.token_expires_at)
        return _look_then_publish(connector, network_account, request, delivery, action)


def _look_then_publish(
    connector: Connector,
    account: NetworkAccount,
    request: PublishRequest,
    delivery: Delivery,
    action: str,
) -> tuple[bool, Published]:
    first = delivery.first_attempt_at or utcnow()
    window = connector.idempotency_window
    key_holds = window is not None and utcnow() - first < window
    # An earlier try may have made the post: after an unknown outcome (the reconciler), or a
    # transient failure on a network that dedupes by our key once the key has expired.
    must_look = action == "reconcile" or (
        delivery.attempts > 1 and window is not None and not key_holds
    )
    if must_look:
        try:
            existing = connector.find_existing(account, request, since=first)
        except NotSupported as exc:
            if not key_holds:
                raise _Unverifiable(str(exc)) from exc
            existing = None  # the network's own key makes a second send harmless
        if existing is not None:
            return True, existing
    return False, connector.publish(account, request)


def _refreshed(account: SocialAccount, expired_at: datetime | None) -> NetworkAccount:
    """The account's tokens refreshed and stored (once, whichever job gets there first: the
    row is locked, and a token newer than `expired_at`, the one that failed, is used as it
    is), or the error that says why not."""
    db.write_lock_on_sqlite()
    locked = db.session.scalars(
        tenancy.scoped_select(SocialAccount)
        .where(SocialAccount.id == account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if locked.token_expires_at is not None and locked.token_expires_at != expired_at:
        outcome = "refreshed"  # another job refreshed it meanwhile
    else:
        outcome = token_refresh.refresh_account(locked)
    db.session.commit()
    if outcome == "refreshed":
        return _network_account(locked)
    if outcome == "needs_reconnect":
        raise CredentialsRejected(locked.last_error or "the network refused the credentials")
    raise TransientNetworkError(
        f"the access token expired and could not be refreshed ({outcome}): "
        f"{locked.last_error or 'no reason given'}"
    )


def _network_account(account: SocialAccount) -> NetworkAccount:
    try:
        secrets = credentials_of(account)
    except crypto.CredentialsUnreadable as exc:
        raise _CannotSend(
            "This server cannot decrypt the account's credentials (a configuration problem "
            "on the server, not the account's): check CREDENTIALS_ENCRYPTION_KEYS.",
            DeliveryErrorKind.INTERNAL,
            permanent=False,
        ) from exc
    return NetworkAccount(
        external_id=account.external_id,
        secrets=secrets,
        instance_url=account.instance_url,
        account_kind=account.account_kind,
        token_expires_at=account.token_expires_at,
    )


def _request(delivery: Delivery, account: SocialAccount) -> PublishRequest:
    post = db.session.scalars(tenancy.scoped_select(Post).where(Post.id == delivery.post_id)).one()
    variant = next((v for v in post.variants if v.account_id == delivery.account_id), None)
    text = variant.text if variant is not None and variant.text is not None else post.text
    media_ids = variant.media_ids if variant is not None and variant.media_ids is not None else None
    if media_ids is None:
        media_ids = post.media_ids
    return PublishRequest(
        idempotency_key=delivery.id,
        text=text,
        link=post.link,
        media=_media_items(media_ids, delivery.brand_id),
        # The first attempt's instant, not the schedule (which a person may move between two
        # attempts): it dates Bluesky's record key, which must never change.
        scheduled_for=delivery.first_attempt_at,
    )


def _media_items(media_ids: list[str], brand_id: str) -> tuple[MediaItem, ...]:
    if not media_ids:
        return ()
    from app.services.media import signed_url

    rows = {
        m.id: m
        for m in db.session.scalars(
            tenancy.scoped_select(Media).where(
                Media.brand_id == brand_id, Media.id.in_(media_ids), Media.deleted_at.is_(None)
            )
        )
    }
    missing = [m for m in media_ids if m not in rows]
    if missing:
        raise _CannotSend(
            f"Media {', '.join(missing)} of this post was deleted; remove it from the post and "
            "schedule it again.",
            DeliveryErrorKind.REJECTED,
            permanent=True,
        )
    storage = get_storage()
    items = []
    for media_id in media_ids:
        media = rows[media_id]
        if not storage.exists(media.storage_key):
            raise _CannotSend(
                f"The file of media {media.id} is missing from storage.",
                DeliveryErrorKind.INTERNAL,
                permanent=True,
            )
        items.append(
            MediaItem(
                content_type=media.content_type,
                size_bytes=media.size_bytes,
                open=lambda key=media.storage_key: storage.open(key),
                filename=media.filename,
                width=media.width,
                height=media.height,
                duration_seconds=media.duration_seconds,
                alt_text=media.alt_text,
                url=signed_url(media),
            )
        )
    return tuple(items)


# -- what came of it -------------------------------------------------------------------------------


def _settle(attempt: _Attempt, to: DeliveryStatus, values: dict[str, Any]) -> Delivery | None:
    """`publishing → to` for this attempt only, with `values`; the delivery reloaded, or None
    when another process took it over (the reconciler, after this job's lease ran out)."""
    delivery = attempt.delivery
    moved = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(
                Delivery.id == delivery.id, Delivery.attempts == attempt.number
            ),
            [DeliveryStatus.PUBLISHING],
            to,
        )
        .values(lease_until=None, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        db.session.rollback()
        log.warning(
            "attempt %d of delivery %s ended (%s) after another process took the delivery over",
            attempt.number,
            delivery.id,
            to.value,
        )
        return None
    db.session.refresh(delivery)
    return delivery


def _record_attempt(
    attempt: _Attempt,
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


def _record_event(delivery: Delivery, action: str, **data: Any) -> None:
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


def _published(
    attempt: _Attempt, account: SocialAccount, action: str, post: Published, *, found: bool
) -> str:
    now = utcnow()
    delivery = _settle(
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
    _record_attempt(attempt, action, outcome)
    _record_event(
        delivery,
        "delivery.published",
        network=account.network,
        external_id=post.external_id,
        url=post.url,
        found_by_reconciler=found or None,
    )
    _roll_up(delivery)
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


def _retry(
    attempt: _Attempt,
    account: SocialAccount,
    action: str,
    exc: TransientNetworkError,
    *,
    kind: DeliveryErrorKind | None = None,
) -> str:
    throttled = exc.status == 429
    kind = kind or (DeliveryErrorKind.RATE_LIMITED if throttled else DeliveryErrorKind.TRANSIENT)
    if attempt.number >= current_app.config["PUBLISH_MAX_ATTEMPTS"]:
        return _fail(
            attempt,
            account,
            action,
            f"Gave up after {attempt.number} attempts; the last one: {exc}",
            kind,
            exc.status,
        )
    retry_at = utcnow() + _backoff(attempt.number, exc.retry_after)
    delivery = _settle(
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
    _record_attempt(
        attempt,
        action,
        "retry",
        kind=kind,
        status_code=exc.status,
        error=str(exc),
        retry_at=retry_at,
    )
    _record_event(
        delivery,
        "delivery.retry_scheduled",
        network=account.network,
        error=str(exc)[:ERROR_TEXT_LIMIT],
        error_kind=kind.value,
        status_code=exc.status,
        retry_at=retry_at.isoformat(),
    )
    _roll_up(delivery)
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


def _fail(
    attempt: _Attempt,
    account: SocialAccount,
    action: str,
    message: str,
    kind: DeliveryErrorKind,
    status_code: int | None,
) -> str:
    delivery = _settle(
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
    _record_attempt(attempt, action, "failed", kind=kind, status_code=status_code, error=message)
    _record_event(
        delivery,
        "delivery.failed",
        network=account.network,
        error=message[:ERROR_TEXT_LIMIT],
        error_kind=kind.value,
        status_code=status_code,
    )
    _roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(account.network, "failed")
    log.error("delivery failed (%s): %s", kind.value, message)
    return "failed"


def _unknown(
    attempt: _Attempt,
    account: SocialAccount,
    action: str,
    message: str,
    status_code: int | None,
    retry_after: int | None,
) -> str:
    config = current_app.config
    if attempt.number >= config["PUBLISH_MAX_ATTEMPTS"]:
        return _unverifiable(
            attempt,
            account,
            f"No answer after {attempt.number} attempts ({message}); the network was never "
            "able to say whether the post exists.",
        )
    delay = retry_after if retry_after is not None else config["PUBLISH_RECONCILE_DELAY_SECONDS"]
    check_at = utcnow() + timedelta(seconds=delay)
    delivery = _settle(
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
    _record_attempt(
        attempt,
        action,
        "unknown",
        kind=DeliveryErrorKind.UNKNOWN,
        status_code=status_code,
        error=message,
        retry_at=check_at,
    )
    _record_event(
        delivery,
        "delivery.unknown",
        network=account.network,
        error=message[:ERROR_TEXT_LIMIT],
        check_at=check_at.isoformat(),
    )
    _roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(account.network, "unknown")
    log.warning("outcome unknown (%s); the network is asked at %s", message, check_at.isoformat())
    return "unknown"


def _unverifiable(attempt: _Attempt, account: SocialAccount, reason: str) -> str:
    """Unknown for good: nothing will send it again, and a person must look."""
    message = (
        f"Relais cannot tell whether this post was published on {account.network} ({reason}). "
        f"Check the account {account.handle} on {account.network}: if the post is not there, "
        "schedule it again."
    )
    delivery = _settle(
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
    _record_attempt(
        attempt, "reconcile", "unknown", kind=DeliveryErrorKind.UNVERIFIABLE, error=message
    )
    _record_event(delivery, "delivery.unknown", network=account.network, error=message)
    _roll_up(delivery)
    db.session.commit()
    metrics.delivery_attempted(account.network, "unknown")
    log.error("outcome cannot be checked: %s", reason)
    return "unknown"
