"""Queue names and the one enqueue helper. Jobs are named by dotted path, so the web process
never imports `workers` (dependencies run one way: workers → app)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from rq import Queue
from rq.serializers import JSONSerializer

DEFAULT = "default"
# The publishing dispatcher alone (every second): first of all, so that it never waits behind
# a burst of publish jobs while the next minute's posts are due.
DISPATCH = "dispatch"
PUBLISHING = "publishing"
BILLING = "billing"
REPORTS = "reports"
# Mail has its own queue: a link someone waits for must not queue behind a long report.
MAIL = "mail"
# Webhooks too: an endpoint slow to answer must hold up neither publishing nor mail.
WEBHOOKS = "webhooks"
# Most urgent first: a worker takes from the first queue that has a job.
ALL_QUEUES = (DISPATCH, PUBLISHING, MAIL, WEBHOOKS, DEFAULT, BILLING, REPORTS)


def queue(name: str = DEFAULT) -> Queue:
    from app.extensions import redis

    if redis.client is None:
        raise RuntimeError("REDIS_URL is not configured")
    return Queue(name, connection=redis.client, serializer=JSONSerializer)


def enqueue(
    job_path: str, *args: Any, queue_name: str = DEFAULT, job_id: str | None = None, **options: Any
):
    """Enqueue `job_path` (e.g. "workers.jobs.maintenance.purge_expired_records").

    Call it after the transaction that made the work has committed. A deterministic `job_id`
    makes a second enqueue of the same work a no-op while the first is pending.
    """
    current_app.logger.debug("enqueue %s %s", job_path, args)
    return queue(queue_name).enqueue(job_path, *args, job_id=job_id, **options)


def enqueue_many(
    job_path: str,
    calls: list[tuple[tuple[Any, ...], str]],
    *,
    queue_name: str = DEFAULT,
    **options: Any,
) -> None:
    """Enqueue `job_path` once per `(args, job_id)` of `calls`, in one round trip to Redis
    (a dispatcher handing out a thousand jobs at once). Call it after the commit, as `enqueue`.
    """
    if not calls:
        return
    target = queue(queue_name)
    target.enqueue_many(
        [
            Queue.prepare_data(job_path, args=args, job_id=job_id, **options)
            for args, job_id in calls
        ]
    )
