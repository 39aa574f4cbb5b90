"""Pooled connections the server has ended are replaced before a request can use them.

The pool checks each connection cheaply on checkout (app/extensions.py) instead of pinging the
server for every request; these prove a restart of PostgreSQL costs no failed request.
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
