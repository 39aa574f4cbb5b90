"""The dispatcher: the one periodic job (every PUBLISH_DISPATCH_INTERVAL_SECONDS, on the
`dispatch` queue) that hands due deliveries to the publishing jobs, across agencies.

Each run, in the database (the source of truth; Redis only carries work):

1. **Claim** the deliveries due within PUBLISH_LOOKAHEAD_SECONDS: `scheduled → queued`, with a
   lease, in one compare-and-set statement under `tenancy.system_scope()` that returns ids.
   PostgreSQL takes the rows `FOR UPDATE SKIP LOCKED`, so two dispatchers started by mistake
   claim disjoint rows; SQLite takes its write lock first (`BEGIN IMMEDIATE`), so the two run
   one after the other. Either way a delivery is claimed once. One
   `workers.jobs.publishing.publish_delivery(delivery_id, agency_id)` per claimed delivery is
   enqueued after the commit, with a deterministic job id (`publish_job_id`). The job waits
   out the last fraction of a second itself (app/services/publishing.py): RQ's `enqueue_at`
   counts whole seconds, so it would publish up to a second early.
2. **Expired leases**: a `queued` delivery whose job is no longer in Redis (flushed, lost) is
   enqueued again (a job still waiting keeps its delivery for another lease); a `publishing`
   one is marked `unknown` in its agency (a publishing job renews its lease while its network
   calls last, so an expired one means its worker died), for the reconciler to ask the network.
3. **Reconciliations due**: `unknown` deliveries whose `next_attempt_at` has come get a
   `workers.jobs.publishing.reconcile_delivery` job; `deleting` ones whose lease ran out (a
   network that was down, a lost job) get their deletion job again
   (app/services/network_deletion.py).

Nothing here touches a tenant's rows beyond these statements: each job re-enters its agency
(the id it carries) before loading anything. Exactly once does not depend on RQ (which runs a
job id enqueued twice twice): it comes from the compare-and-set each job makes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from app import queue, tenancy
from app.extensions import db, redis
from app.models import Delivery, DeliveryStatus
from app.models.base import utcnow
from app.services import lifecycle, network_deletion, publishing

log = logging.getLogger(__name__)

PUBLISH_JOB = "workers.jobs.publishing.publish_delivery"
RECONCILE_JOB = "workers.jobs.publishing.reconcile_delivery"
# A publish may wait minutes for the network to process a video (a connector's
# media_wait_seconds) on top of its uploads: RQ's default limit of 3 minutes would cut it off.
JOB_TIMEOUT_SECONDS = 900
# A job RQ still holds for us: waiting in its queue, or for its time, or running.
_ALIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}
# How recent a running job's heartbeat must be for its worker to count as alive: RQ's own
# allowance (the worker beats every job_monitoring_interval, 30 s, and gives a beat 60 s more).
_HEARTBEAT_ALLOWANCE = timedelta(seconds=90)


def publish_job_id(delivery_id: str, attempt: int) -> str:
    """The publish job of one attempt of one delivery: the same id whoever enqueues it."""
    return f"publish-{delivery_id}-{attempt}"


def reconcile_job_id(delivery_id: str, attempts: int) -> str:
    """The reconciler of one delivery, named after the attempts it had when handed over: the
    reconciler's own try is the next one."""
    return f"reconcile-{delivery_id}-{attempts}"


@dataclass(frozen=True)
class Handed:
    """A delivery the dispatcher hands to a job: its id, its agency, and its attempts so far."""

    delivery_id: str
    agency_id: str
    attempts: int
    status: str = DeliveryStatus.QUEUED.value


def dispatch(now: datetime | None = None) -> dict[str, int]:
    """One run of the dispatcher; returns how many deliveries it claimed, enqueued again and
    sent to the reconciler."""
    config = current_app.config
    now = now or utcnow()
    lease = timedelta(seconds=config["PUBLISH_LEASE_SECONDS"])
    horizon = now + timedelta(seconds=config["PUBLISH_LOOKAHEAD_SECONDS"])
    limit = config["PUBLISH_CLAIM_BATCH"]

    claimed = claim_due(now, horizon, lease, limit)
    _enqueue_publish(claimed)

    expired = renew_expired_leases(now, lease, limit)
    lost = [h for h in expired if h.status == DeliveryStatus.QUEUED.value and _lost(h)]
    _enqueue_publish(lost)
    # A publishing job renews its lease while its network calls last: one whose lease ran out
    # has lost its worker. Unknown, each in its own agency, and so due for the reconciler now.
    abandoned = [
        h
        for h in abandoned_publishing(now, limit)
        if publishing.mark_worker_lost(h.delivery_id, h.agency_id, now)
    ]
    due = take_due_reconciliations(now, lease, limit)
    _enqueue_reconcile(due)
    # A deletion from the network due again (its network was down), or whose job was lost.
    for handed in expired:
        if handed.status == DeliveryStatus.DELETING.value:
            network_deletion.enqueue(handed.delivery_id, handed.agency_id)
    if lost or abandoned:
        log.warning(
            "dispatcher: %d claimed deliveries had lost their job (enqueued again), %d were "
            "left publishing by a dead worker (reconciling)",
            len(lost),
            len(abandoned),
        )
    return {
        "claimed": len(claimed),
        "enqueued_again": len(lost),
        "reconciling": len(due),
    }


# -- the statements, across agencies --------------------------------------------------------------


def _handed(rows: Any) -> list[Handed]:
    return [Handed(r.id, r.agency_id, r.attempts, r.status) for r in rows]


@tenancy.system_lookup(tenancy.SystemLookup.DISPATCHER)
def claim_due(now: datetime, horizon: datetime, lease: timedelta, limit: int) -> list[Handed]:
    """`scheduled → queued` for the deliveries due by `horizon`, earliest first, across
    agencies; commits and returns them."""
    with tenancy.system_scope():
        # SQLite has no row locks: its write lock makes a second dispatcher wait for this one's
        # commit (PostgreSQL's SKIP LOCKED lets the two claim disjoint rows instead).
        db.write_lock_on_sqlite()
        due = (
            select(Delivery.id)
            .where(
                Delivery.status == DeliveryStatus.SCHEDULED.value,
                Delivery.next_attempt_at <= horizon,
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = lifecycle.delivery_cas(
            update(Delivery).where(Delivery.id.in_(due.scalar_subquery())),
            [DeliveryStatus.SCHEDULED],
            DeliveryStatus.QUEUED,
        ).values(claimed_at=now, lease_until=horizon + lease)
        rows = db.session.execute(
            statement.returning(
                Delivery.id, Delivery.agency_id, Delivery.attempts, Delivery.status
            ).execution_options(synchronize_session=False)
        ).all()
        db.session.commit()
    return _handed(rows)


@tenancy.system_lookup(tenancy.SystemLookup.DISPATCHER)
def renew_expired_leases(now: datetime, lease: timedelta, limit: int) -> list[Handed]:
    """The queued and deleting deliveries whose lease has run out, across agencies, each leased
    again from `now` (so the next run leaves them be while this one looks at their jobs);
    commits and returns them."""
    with tenancy.system_scope():
        db.write_lock_on_sqlite()
        in_flight = [DeliveryStatus.QUEUED.value, DeliveryStatus.DELETING.value]
        expired = (
            select(Delivery.id)
            .where(Delivery.status.in_(in_flight), Delivery.lease_until < now)
            .order_by(Delivery.lease_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(expired.scalar_subquery()), Delivery.status.in_(in_flight))
            .values(lease_until=now + lease)
            .returning(Delivery.id, Delivery.agency_id, Delivery.attempts, Delivery.status)
            .execution_options(synchronize_session=False)
        ).all()
        db.session.commit()
    return _handed(rows)


@tenancy.system_lookup(tenancy.SystemLookup.DISPATCHER)
def abandoned_publishing(now: datetime, limit: int) -> list[Handed]:
    """The publishing deliveries whose lease has run out, across agencies (read only: each is
    moved in its own agency, by compare-and-set on the lease, `publishing.mark_worker_lost`)."""
    with tenancy.system_scope():
        rows = db.session.execute(
            select(Delivery.id, Delivery.agency_id, Delivery.attempts, Delivery.status)
            .where(
                Delivery.status == DeliveryStatus.PUBLISHING.value,
                Delivery.lease_until < now,
            )
            .order_by(Delivery.lease_until)
            .limit(limit)
        ).all()
        db.session.commit()
    return _handed(rows)


@tenancy.system_lookup(tenancy.SystemLookup.DISPATCHER)
def take_due_reconciliations(now: datetime, lease: timedelta, limit: int) -> list[Handed]:
    """The unknown deliveries whose reconciliation is due, across agencies, put off by a lease
    (the reconciler sets the next time itself); commits and returns them."""
    with tenancy.system_scope():
        db.write_lock_on_sqlite()
        due = (
            select(Delivery.id)
            .where(
                Delivery.status == DeliveryStatus.UNKNOWN.value,
                Delivery.next_attempt_at <= now,
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = db.session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(due.scalar_subquery()),
                Delivery.status == DeliveryStatus.UNKNOWN.value,
            )
            .values(next_attempt_at=now + lease)
            .returning(Delivery.id, Delivery.agency_id, Delivery.attempts, Delivery.status)
            .execution_options(synchronize_session=False)
        ).all()
        db.session.commit()
    return _handed(rows)


# -- Redis: what became of the jobs ----------------------------------------------------------------


def _job(job_id: str) -> Job | None:
    from rq.exceptions import NoSuchJobError
    from rq.serializers import JSONSerializer

    try:
        return Job.fetch(job_id, connection=redis.client, serializer=JSONSerializer)
    except NoSuchJobError:
        return None


def _lost(handed: Handed) -> bool:
    """Whether the publish job of a queued delivery is gone: not in Redis any more (flushed,
    expired), or ended without taking the delivery (it failed before its compare-and-set). A
    job still waiting in its queue keeps its delivery; so does one that has just started (it
    takes the delivery in a moment, or finds it taken)."""
    job = _job(publish_job_id(handed.delivery_id, handed.attempts + 1))
    if job is None:
        return True
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        # RQ moves a job off its queue, then marks it started: a worker killed in between
        # leaves it marked queued in no queue, until RQ's maintenance fails it 10 to 20
        # minutes later. Only a job still in its queue is waiting (one a live worker is taking
        # this very instant may be enqueued twice: its compare-and-set runs it once).
        return queue.queue(job.origin).get_job_position(job.id) is None
    if status == JobStatus.STARTED:
        return not _running(job)
    return status not in _ALIVE


def _running(job: Job) -> bool:
    """A started job whose worker still beats (a killed worker's job stays `started`)."""
    beat = job.last_heartbeat
    return beat is not None and beat.replace(tzinfo=utcnow().tzinfo) > utcnow() - (
        _HEARTBEAT_ALLOWANCE
    )


def _enqueue_publish(handed: list[Handed]) -> None:
    _enqueue(
        PUBLISH_JOB,
        [
            ((h.delivery_id, h.agency_id), publish_job_id(h.delivery_id, h.attempts + 1))
            for h in handed
        ],
    )


def _enqueue_reconcile(handed: list[Handed]) -> None:
    _enqueue(
        RECONCILE_JOB,
        [
            ((h.delivery_id, h.agency_id), reconcile_job_id(h.delivery_id, h.attempts))
            for h in handed
        ],
    )


def _enqueue(job_path: str, calls: list[tuple[tuple[str, str], str]]) -> None:
    """Enqueue the jobs of deliveries already committed as handed over. Should Redis refuse,
    nothing is lost: their leases run out and a later run enqueues them again."""
    try:
        queue.enqueue_many(
            job_path, calls, queue_name=queue.PUBLISHING, timeout=JOB_TIMEOUT_SECONDS
        )
    except Exception:  # noqa: BLE001 - the database keeps them; the lease brings them back
        log.exception(
            "dispatcher: %d %s jobs not enqueued; retried once their lease ends",
            len(calls),
            job_path.rsplit(".", 1)[-1],
        )
