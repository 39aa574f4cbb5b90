"""Small assertions and database helpers shared by the behavioural tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON, response.mimetype
    body = response.get_json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def owner_connection(database: Any) -> Iterator[Connection]:
    """A transaction as the tables' owner (a superuser in tests, so RLS does not hide rows):
    for arranging rows the API cannot make yet, and for checking what is really stored."""
    engine = create_engine(database.owner_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()
