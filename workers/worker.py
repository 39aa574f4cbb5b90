"""`relais worker`: an RQ worker on Relais's queues, with the application built once.

The worker class builds the application in the parent, before the first job is forked, with
the API's checks (app/startup.py): a worker started without the production variables, or
connected as a role RLS does not bind, exits at once with the reason instead of working with a
development key. Each job then forks from a process that has imported and built everything,
and pays for none of it (`workers/context.py` only enters an app context).

It is still a plain RQ worker: `rq worker --worker-class workers.worker.RelaisWorker
--serializer json …` runs the same thing, for those who prefer rq's own command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rq import Queue, Worker
from rq.job import Job

from app import tenancy

_checked = False


def refuse_to_start_misconfigured() -> None:
    """Build the app (once) and run the API's checks, or exit with the reasons."""
    global _checked
    if _checked:
        return
    from app.startup import UnsafeConfiguration, refuse_unsafe_database
    from workers import context

    try:
        refuse_unsafe_database(context.app().config)
        _checked = True
        from app.networks import load_all

        load_all()  # once, here, rather than in each forked publish job
        warm_up_database_layer()
    except UnsafeConfiguration as exc:
        raise SystemExit(f"[relais] worker {exc}") from None
    except (RuntimeError, ValueError) as exc:  # create_app's other refusals (e.g. a bad key)
        raise SystemExit(f"[relais] worker refusing to start: {exc}") from None


@tenancy.system_lookup(tenancy.SystemLookup.WARM_UP)
def warm_up_database_layer() -> None:
    """Pay here, once, what each forked job would pay on its first statements: SQLAlchemy
    readies a model the first time a statement names it, and the driver its first query
    (measured: 0.5 s in every job on PostgreSQL, more than the job itself). Each model's
    statement is compiled, never run; the one query reads no table. The pool is emptied after:
    a forked job opens a connection of its own, never one shared with this process."""
    from sqlalchemy import literal, select

    from app.extensions import db
    from app.models import Base
    from workers import context

    with context.app().app_context():
        dialect = db.engine.dialect
        for mapper in Base.registry.mappers:
            select(mapper.class_).limit(0).compile(dialect=dialect)
        try:
            db.session.execute(select(literal(1))).all()
        finally:
            db.session.rollback()
            db.session.remove()
            db.engine.dispose()


class RelaisWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        refuse_to_start_misconfigured()
        super().__init__(*args, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> None:
        # In the parent, around the fork: rq's own lines about the job ("Job OK") carry its id,
        # and the work horse inherits the context.
        from app import logs

        with logs.bound(job_id=job.id, job=job.func_name):
            super().execute_job(job, queue)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # The first thing the forked horse runs: its metrics go to the worker's job files
        # (app/metrics.py says why), not to a file of its own.
        from app import metrics

        metrics.job_process_of(os.getppid())
        super().main_work_horse(job, queue)


def run(
    queue_names: Sequence[str],
    *,
    burst: bool = False,
    with_scheduler: bool = True,
    max_jobs: int | None = None,
    name: str | None = None,
) -> bool:
    """Work the queues (most urgent first) on the configured Redis; True if any job ran."""
    import redis
    from rq.serializers import JSONSerializer

    from app.queue import ALL_QUEUES
    from workers import context

    refuse_to_start_misconfigured()  # builds the app (and its logging) before anything else
    connection = redis.Redis.from_url(context.app().config["REDIS_URL"])
    # Priority order whatever the order given: rq takes from the first non-empty queue.
    wanted = set(queue_names) or set(ALL_QUEUES)
    queues = [
        Queue(queue_name, connection=connection, serializer=JSONSerializer)
        for queue_name in ALL_QUEUES
        if queue_name in wanted
    ]
    worker = RelaisWorker(queues, connection=connection, serializer=JSONSerializer, name=name)
    # No logging level: rq would add handlers of its own; ours (LOG_FORMAT) are on the root.
    return worker.work(burst=burst, with_scheduler=with_scheduler, max_jobs=max_jobs)
