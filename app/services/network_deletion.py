"""Deleting a published post from its networks, when a person asks (`POST
…/posts/{post_id}/delete-from-network`).

`request_deletion` moves the post's published deliveries to `deleting` by compare-and-set, with
a lease, and enqueues one `workers.jobs.publishing.delete_from_network(delivery_id, agency_id)`
job per delivery once that commits. The job (`delete`) calls the connector's `delete` (a post
already gone counts as deleted, so running it twice is harmless):

- done: `deleted`, and `delivery.deleted_from_network` in the post's activity;
- the network refuses for good (a network without deletion, credentials dead): back to
  `published` with the reason in `last_error`, and `delivery.deletion_failed`; dead
  credentials also set the account to `needs_reconnect`;
- the network is down or asks us to wait: the delivery stays `deleting`, its lease set to the
  time of the next try, and the dispatcher enqueues the job again when the lease runs out (as
  it does for a job Redis lost).

The post keeps its status: it was published, and its activity says what was deleted since.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app

from app import logs, queue, tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import Delivery, DeliveryStatus, Post, SocialAccount
from app.models.base import utcnow
from app.networks import connector_for
from app.networks.base import (
    CredentialsRejected,
    NetworkError,
    TokenExpired,
    TransientNetworkError,
)
from app.services import account_health, audit, deliveries, lifecycle
from app.services.publishing_request import network_account, refreshed_credentials

log = logging.getLogger(__name__)

DELETE_JOB = "workers.jobs.publishing.delete_from_network"
# A network that is down is asked again after this long (or its own Retry-After).
RETRY_AFTER = timedelta(minutes=1)


def delete_job_id(delivery_id: str) -> str:
    return f"delete-{delivery_id}"


def request_deletion(post: Post, account_ids: list[str] | None, *, actor: audit.Actor) -> Post:
    """Delete the post from the networks it went out on (only from `account_ids` when given):
    its deliveries go to `deleting` and the jobs are enqueued. 409 when nothing of it is on a
    network; 422 naming an account the post did not go out on. Commits."""
    published = {
        d.account_id: d
        for d in deliveries.deliveries_of(post)
        if d.status == DeliveryStatus.PUBLISHED.value
    }
    if account_ids is not None:
        missing = sorted(set(account_ids) - set(published))
        if missing:
            raise ValidationFailed(
                "The post is not on the network of some of these accounts: "
                + ", ".join(missing)
                + ".",
                errors={"account_ids": [f"Not published on {a}." for a in missing]},
            )
        targets = [published[a] for a in dict.fromkeys(account_ids)]
    else:
        targets = list(published.values())
    if not targets:
        raise Conflict(
            f"Nothing of this post is on a network (the post is '{post.status}'); there is "
            "nothing to delete."
        )
    lease = timedelta(seconds=current_app.config["PUBLISH_LEASE_SECONDS"])
    moved = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(Delivery.id.in_([d.id for d in targets])),
            [DeliveryStatus.PUBLISHED],
            DeliveryStatus.DELETING,
        )
        .values(lease_until=utcnow() + lease, last_error=None, last_error_kind=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != len(targets):
        raise Conflict("Another deletion of this post has started meanwhile.")
    lifecycle.record_post_event(
        post,
        "post.deletion_requested",
        {"accounts": sorted(d.account_id for d in targets)},
        actor=actor,
    )
    db.session.commit()
    for delivery in targets:
        db.session.refresh(delivery)
        enqueue(delivery.id, delivery.agency_id)
    return post


def enqueue(delivery_id: str, agency_id: str) -> None:
    """After the commit. Should Redis refuse, the lease brings the delivery back."""
    try:
        queue.enqueue(
            DELETE_JOB,
            delivery_id,
            agency_id,
            queue_name=queue.PUBLISHING,
            job_id=delete_job_id(delivery_id),
        )
    except Exception:  # noqa: BLE001 - the database keeps it; the dispatcher enqueues it again
        log.warning("deletion of delivery %s not enqueued; the dispatcher will", delivery_id)


# -- the job --------------------------------------------------------------------------------------


def delete(delivery_id: str, agency_id: str) -> str:
    """The job: delete one delivery's post from its network. Returns `deleted`, `retry`,
    `refused`, or why it did nothing (`not_found`: not this agency's; `skipped`)."""
    tenancy.enter_agency(agency_id)
    try:
        delivery = db.session.scalars(
            tenancy.scoped_select(Delivery).where(Delivery.id == delivery_id)
        ).first()
        if delivery is None:
            log.warning("delivery %s is not one of agency %s: nothing done", delivery_id, agency_id)
            return "not_found"
        if delivery.status != DeliveryStatus.DELETING.value:
            return "skipped"
        with logs.bound(
            delivery_id=delivery.id,
            post_id=delivery.post_id,
            brand_id=delivery.brand_id,
            account_id=delivery.account_id,
        ):
            return _delete(delivery)
    finally:
        db.session.rollback()
        tenancy.set_scope(tenancy.NO_SCOPE)


def _delete(delivery: Delivery) -> str:
    account = db.session.scalars(
        tenancy.scoped_select(SocialAccount).where(SocialAccount.id == delivery.account_id)
    ).one()
    connector = connector_for(account.network)
    try:
        credentials = network_account(account)
        db.session.commit()  # no transaction open during the network call
        try:
            connector.delete(credentials, delivery.external_id or "")
        except TokenExpired:
            credentials = refreshed_credentials(account, credentials.token_expires_at)
            connector.delete(credentials, delivery.external_id or "")
    except TransientNetworkError as exc:
        wait = max(RETRY_AFTER, timedelta(seconds=exc.retry_after or 0))
        db.session.execute(
            tenancy.scoped_update(Delivery)
            .where(
                Delivery.id == delivery.id,
                Delivery.status == DeliveryStatus.DELETING.value,
            )
            .values(lease_until=utcnow() + wait, last_error=str(exc)[:2000])
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        log.warning("deleting from %s failed for now (%s); tried again", account.network, exc)
        return "retry"
    except CredentialsRejected as exc:
        account_health.mark_needs_reconnect(account, str(exc))
        return _refused(delivery, account, f"{exc}; reconnect the account, then ask again")
    except NetworkError as exc:  # NotSupported among them: a person deletes it by hand
        return _refused(delivery, account, str(exc))
    except Exception as exc:  # noqa: BLE001 - our side (credentials unreadable, say)
        log.exception("deleting from the network failed")
        return _refused(delivery, account, f"{type(exc).__name__}: {exc}")
    moved = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(Delivery.id == delivery.id),
            [DeliveryStatus.DELETING],
            DeliveryStatus.DELETED,
        )
        .values(lease_until=None, last_error=None, last_error_kind=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved:
        _record(delivery, "delivery.deleted_from_network", network=account.network)
    db.session.commit()
    log.info("deleted %s from %s", delivery.external_id, account.network)
    return "deleted" if moved else "skipped"


def _refused(delivery: Delivery, account: SocialAccount, reason: str) -> str:
    moved = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(Delivery.id == delivery.id),
            [DeliveryStatus.DELETING],
            DeliveryStatus.PUBLISHED,
        )
        .values(lease_until=None, last_error=f"Not deleted from the network: {reason}"[:2000])
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved:
        _record(delivery, "delivery.deletion_failed", network=account.network, error=reason)
    db.session.commit()
    log.error("could not delete %s from %s: %s", delivery.external_id, account.network, reason)
    return "refused"


def _record(delivery: Delivery, action: str, **data: str) -> None:
    audit.record(
        action,
        actor=audit.SYSTEM,
        agency_id=delivery.agency_id,
        brand_id=delivery.brand_id,
        target_type="post",
        target_id=delivery.post_id,
        data={"delivery_id": delivery.id, "account_id": delivery.account_id, **data},
    )
