"""One application per worker process; each job runs inside its own app context."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    """Run the job body inside an app context (fresh session, no tenant until it enters one)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with app_context():
            return func(*args, **kwargs)

    return wrapper
