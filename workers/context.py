"""One application per worker process; each job runs inside its own app context.

`relais worker` (workers/worker.py) builds the application in the worker's parent process,
before any job is forked, so a job finds it made (`app()` only builds it for code that runs a
job outside a worker: tests, a script).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from typing import Any

from flask import Flask

_app: Flask | None = None


def app() -> Flask:
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


@contextmanager
def app_context() -> Iterator[Flask]:
    from flask import current_app, has_app_context

    if has_app_context():  # already inside one (tests run jobs in-process)
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    with app().app_context():
        yield app()


def job(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run the job body inside an app context (fresh session, no tenant until it enters one),
    with its ids in the log context (app/logs.py) and its outcome and duration counted
    (app/metrics.py)."""
    name = f"{func.__module__}.{func.__name__}"
    signature = inspect.signature(func)
    id_parameters = [p for p in signature.parameters if p.endswith("_id")]

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from app import logs, metrics

        fields: dict[str, Any] = {"job": name, "job_id": _current_job_id()}
        if id_parameters:
            try:
                given = signature.bind_partial(*args, **kwargs).arguments
            except TypeError:  # the call itself is wrong: let the function say so
                given = {}
            fields.update({p: given[p] for p in id_parameters if isinstance(given.get(p), str)})
        started = time.perf_counter()
        succeeded = False
        with logs.bound(**fields), app_context():
            try:
                result = func(*args, **kwargs)
                succeeded = True
                return result
            finally:
                with suppress(OSError):  # a metrics directory gone must not fail the job
                    metrics.job_ran(name, succeeded, time.perf_counter() - started)

    return wrapper


def _current_job_id() -> str | None:
    from rq import get_current_job

    current = get_current_job()
    return current.id if current is not None else None
