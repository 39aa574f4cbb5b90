"""`relais worker`: an RQ worker on Relais's queues, with the application built once.

The worker class builds the application in the parent, before the first job is forked, with
the API's checks (app/startup.py): a worker started without the production variables, or
connected as a role RLS does not bind, exits at once with the reason instead of working with a
development key. Each job then forks from a process that has imported and built everything,
and pays for none of it (`workers/context.py` only enters an app context). The publishing
jobs do not even fork: they run in the worker itself (IN_PROCESS_QUEUES says why).

It is still a plain RQ worker: `rq worker --worker-class workers.worker.RelaisWorker
--serializer json …` runs the same thing, for those who prefer rq's own command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rq import Queue, Worker
from rq.job import Job
from rq.worker import WorkerStatus

from app.queue import DISPATCH, PUBLISHING

_checked = False

# Queues whose jobs run in the worker's own process instead of a forked work horse. They are
# the short, I/O-bound jobs of publishing, every one on time: a fork made each about four times
# dearer (measured: 70 ms a publish job in a horse, 16 ms here), as every horse opened its own
# database connection and compiled its SQL anew. The worker's connection pool and caches now
# serve them all. A job that crashes the process takes the worker with it: the database leases
# bring its delivery back (app/services/dispatcher.py), and the supervisor the worker.
IN_PROCESS_QUEUES = frozenset({DISPATCH, PUBLISHING})


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
        _prepare_for_jobs()
    except UnsafeConfiguration as exc:
        raise SystemExit(f"[relais] worker {exc}") from None
    except (RuntimeError, ValueError) as exc:  # create_app's other refusals (e.g. a bad key)
        raise SystemExit(f"[relais] worker refusing to start: {exc}") from None


def _prepare_for_jobs() -> None:
    """What every job would otherwise redo after its fork, done once in the parent: the
    imports of the jobs' services and of the network connectors (atproto alone takes seconds
    on a busy machine; httpx imports its transport, httpcore, at its first request), and the
    ORM's mapper configuration. Each was tens of milliseconds in every publish job. Nothing
    here opens a connection: one made before the fork would be shared by every job."""
    import importlib

    from sqlalchemy.orm import configure_mappers

    from app.networks import load_all

    load_all()
    for module in _PRELOADED:
        importlib.import_module(module)
    configure_mappers()


# Imported by jobs when they run (lazily, inside the job functions and by httpx).
_PRELOADED = (
    "httpcore",
    "workers.jobs.publishing",
    "app.services.publishing",
    "app.services.dispatcher",
)


class RelaisWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        refuse_to_start_misconfigured()
        super().__init__(*args, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> None:
        # In the parent, around the fork: rq's own lines about the job ("Job OK") carry its id,
        # and the work horse inherits the context.
        from app import logs

        with logs.bound(job_id=job.id, job=job.func_name):
            if queue.name in IN_PROCESS_QUEUES:
                self._perform_in_process(job, queue)
            else:
                super().execute_job(job, queue)

    def _perform_in_process(self, job: Job, queue: Queue) -> None:
        """What rq's SimpleWorker does: the job runs here, without a fork (its time limit is
        still enforced, by SIGALRM)."""
        execution = self.prepare_execution(job)
        self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

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
