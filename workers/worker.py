"""The RQ worker class: `rq worker -w workers.worker.RelaisWorker …`.

It builds the application in the parent, before the first job is forked, with the API's
checks (app/startup.py): a worker started without the production variables, or connected as a
role RLS does not bind, exits at once with the reason instead of working with a development key.
"""

from __future__ import annotations

from typing import Any

from rq import Worker


def refuse_to_start_misconfigured() -> None:
    from app.startup import UnsafeConfiguration, refuse_unsafe_database
    from workers import context

    try:
        refuse_unsafe_database(context.app().config)
    except UnsafeConfiguration as exc:
        raise SystemExit(f"[relais] rq worker {exc}") from None
    except (RuntimeError, ValueError) as exc:  # create_app's other refusals (e.g. a bad key)
        raise SystemExit(f"[relais] rq worker refusing to start: {exc}") from None


class RelaisWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        refuse_to_start_misconfigured()
        super().__init__(*args, **kwargs)
