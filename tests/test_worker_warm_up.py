"""`relais worker` warms SQLAlchemy and the driver up before it forks (workers/worker.py): each
forked job used to pay the first use of every model it touched, about half a second on
PostgreSQL (benchmarks/publish_bench.py found it). The warm-up must leave no connection behind:
one shared by the parent and its forked jobs would carry their statements interleaved."""

from __future__ import annotations

from sqlalchemy import literal, select

from app.extensions import db
from workers import context, worker


def test_the_warm_up_leaves_no_connection_in_the_pool(app, monkeypatch):
    monkeypatch.setattr(context, "_app", app)
    with app.app_context():
        db.session.execute(select(literal(1)))
        db.session.remove()  # back to the pool, kept open there
        assert db.engine.pool.checkedin() == 1

    worker.warm_up_database_layer()

    with app.app_context():
        assert (db.engine.pool.checkedin(), db.engine.pool.checkedout()) == (0, 0)
