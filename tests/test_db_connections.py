"""Pooled connections the server has ended are replaced before a request can use them.

The pool checks each connection cheaply on checkout (app/extensions.py) instead of pinging the
server for every request; these prove a restart of PostgreSQL costs no failed request. And
successful reads end with COMMIT, which keeps psycopg's prepared statements (a ROLLBACK drops
them).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from app import extensions


def _backend_pids(app) -> set[int]:
    engine = app.extensions["relais_db_engine"]
    pids = set()
    # Check out several at once so the pool holds more than one idle connection afterwards.
    connections = [engine.connect() for _ in range(3)]
    for conn in connections:
        pids.add(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    for conn in connections:
        conn.close()
    return pids


def _terminate(owner_url: str, pids: set[int]) -> None:
    admin = create_engine(make_url(owner_url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": list(pids)},
            ).scalar()
            if not alive:
                break
            time.sleep(0.05)
    admin.dispose()


@pytest.mark.parametrize("silent_drop", [False, True], ids=["server-closed", "silent-drop"])
def test_requests_survive_the_server_ending_pooled_connections(
    postgres_only, database, app, client, make_agency, monkeypatch, silent_drop
) -> None:
    if silent_drop:
        # A connection dropped without a word (a firewall) shows nothing on its socket: only
        # the ping of a connection idle for long finds it.
        monkeypatch.setattr(extensions.select, "select", lambda *_: ([], [], []))
        monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0.0)
    owner = make_agency("Restart", brands=1)
    with app.app_context():
        pids = _backend_pids(app)
    _terminate(database.owner_url, pids)

    for _ in range(4):  # more requests than there were pooled connections
        response = client.get(f"/v1/brands/{owner.brands[0]}", headers=owner.headers)
        assert response.status_code == 200, response.get_json()
    with app.app_context():
        assert not _backend_pids(app) & pids


def test_reads_keep_the_prepared_statements(app, client, make_agency, postgres_only):
    """psycopg prepares a statement on its fifth use on a connection and forgets them all on a
    ROLLBACK; a successful read ends with COMMIT, so its statements stay prepared."""
    owner = make_agency(brands=1)
    url = f"/v1/brands/{owner.brands[0]}/posts"
    # The pool hands its idle connections out in turn: enough reads for five on each.
    for _ in range(5 * 5 + 1):
        assert client.get(url, headers=owner.headers).status_code == 200
    engine = app.extensions["relais_db_engine"]
    # Whichever idle connection of the pool the requests above used.
    connections = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:
        prepared = [
            statement
            for conn in connections
            for statement in conn.exec_driver_sql(
                "SELECT statement FROM pg_prepared_statements"
            ).scalars()
        ]
    finally:
        for conn in connections:
            conn.close()
    assert any("FROM posts" in statement for statement in prepared), prepared


def test_only_successful_reads_commit(app, client, make_agency):
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    owner = make_agency(brands=1)
    commits = []

    def count(session):
        commits.append(session)

    event.listen(Session, "after_commit", count)
    try:
        assert client.get(f"/v1/brands/{owner.brands[0]}", headers=owner.headers).status_code == 200
        assert len(commits) == 1
        missing = client.get(f"/v1/brands/{owner.brands[0][:-4]}ZZZZ", headers=owner.headers)
        assert missing.status_code == 404
        refused = client.get("/v1/api-keys", headers={"Authorization": "Bearer nonsense"})
        assert refused.status_code == 401
        assert len(commits) == 1, "a read that failed must end with ROLLBACK"
    finally:
        event.remove(Session, "after_commit", count)
