"""The RQ worker class: `rq worker --worker-class workers.worker.RelaisWorker …`.

RQ forks a work horse for every job. A plain `rq worker` imports nothing of ours before that,
so each job imported the application and built it again in its fresh child: about 10 s per
housekeeping job on an empty database. This worker loads every job module and builds the
application once, in the parent, before the first fork; each horse inherits them.

Nothing connects here (`create_app` does no I/O), so no database connection or socket is
shared between forks: each horse opens its own on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from rq.worker import Worker

import workers.jobs
from workers import context


def preload() -> None:
    """Import every job module and build the application in this process."""
    for module in pkgutil.iter_modules(workers.jobs.__path__, f"{workers.jobs.__name__}."):
        importlib.import_module(module.name)
    context.app()


class RelaisWorker(Worker):
    """RQ's forking worker, with the application loaded before the first fork."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        preload()
