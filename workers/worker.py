"""The RQ worker class: `rq worker --worker-class workers.worker.RelaisWorker …`.

RQ forks a work horse for every job. A plain `rq worker` builds nothing of ours before that, so
each job imported and built the application again in its fresh child: about 10 s per
housekeeping job on an empty database. This worker builds the application once, in the
parent, before the first fork; each horse inherits it.

Nothing connects here (`create_app` does no I/O), so no database connection or socket is
shared between forks: each horse opens its own on first use.
"""

from __future__ import annotations

from typing import Any

from rq import Worker


class RelaisWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from workers import context

        context.app()
        super().__init__(*args, **kwargs)
