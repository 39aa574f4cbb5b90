"""Extensions, created unbound at import and bound to an app in `create_app`."""

from __future__ import annotations

import select
import time
from typing import Any

import redis as redis_lib
from flask import Flask, Response, current_app, request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.pool import StaticPool

from app.errors import ProblemApi


def _app_context_ident() -> int:
    # One session per app context: a request, a CLI command or a job.
    from flask import g

    return id(g._get_current_object())


class _AppBoundSession(Session):
    """Binds to the engine of the current app, so several apps (tests) can coexist."""

    def get_bind(self, *args: Any, **kwargs: Any) -> Engine:  # type: ignore[override]
        return current_app.extensions["relais_db_engine"]


class Database:
    """The engine and the context-scoped session; nothing connects until first use."""

    def __init__(self) -> None:
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(class_=_AppBoundSession, expire_on_commit=False),
            scopefunc=_app_context_ident,
        )

    def init_app(self, app: Flask) -> None:
        app.extensions["relais_db_engine"] = make_engine(
            app.config["DATABASE_URL"], app.config["DATABASE_POOL_SIZE"]
        )

        @app.after_request
        def _end_reads_with_commit(response: Response) -> Response:
            # psycopg forgets its prepared statements on every ROLLBACK (it cannot tell a
            # rolled-back DROP from a read), and every read used to end with one when its
            # session closed, so PostgreSQL parsed and planned each statement of each request
            # anew. A successful read has nothing to undo (the few reads that write, such as an
            # API key's last use, commit their write themselves): ending it with COMMIT changes
            # no data, and keeps the statements psycopg prepares after their fifth use.
            if (
                request.method in ("GET", "HEAD")
                and response.status_code < 400
                and self.session.registry.has()
            ):
                self.session.commit()
            return response

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.session.remove()

    @property
    def engine(self) -> Engine:
        return current_app.extensions["relais_db_engine"]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write_lock_on_sqlite(self) -> None:
        """On SQLite, which has no row locks, take the database's write lock now, before the
        rows are read (what `SELECT … FOR UPDATE` does for a row on PostgreSQL, and a no-op
        there). The sqlite3 driver opens a transaction only at the first write, so the reads
        before it would see whatever other writers commit meanwhile; BEGIN IMMEDIATE waits out
        busy_timeout as any write does. A transaction already open began with a write and holds
        the lock already."""
        if self.dialect != "sqlite":
            return
        connection = self.session.connection()
        if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, pool_size: int = 5) -> Engine:
    options: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"check_same_thread": False}
        if url in ("sqlite://", "sqlite:///:memory:"):
            options["poolclass"] = StaticPool
    else:
        options.update(pool_size=pool_size, max_overflow=pool_size * 2)
    engine = create_engine(url, **options)
    if engine.dialect.name == "postgresql":
        _check_connections_cheaply(engine)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


# A connection idle longer than this is pinged before use (see _check_connections_cheaply).
PING_AFTER_IDLE_SECONDS = 30.0
_IDLE_SINCE = "relais_idle_since"


def _check_connections_cheaply(engine: Engine) -> None:
    """Hand out only live connections, without a round trip per request.

    `pool_pre_ping` would send a query on every checkout: a sixth of an authenticated read's
    round trips. A server that restarts or ends a session writes to (or closes) the socket of
    each idle connection, so a readable socket means a dead connection, which costs one
    `select()` to see. Only a connection idle long enough for a silent drop (a firewall, a
    proxy) still gets a real ping. A connection found dead is replaced by the pool, transparently
    to the request (DisconnectionError in `checkout`).
    """

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _live(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_for = time.monotonic() - record.info.get(_IDLE_SINCE, 0.0)
        try:
            readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
            if readable:
                raise DisconnectionError("the server closed or spoke on an idle connection")
            if idle_for > PING_AFTER_IDLE_SECONDS:
                engine.dialect.do_ping(dbapi_connection)
        except DisconnectionError:
            raise
        except Exception as exc:  # any failure here means "do not use this connection"
            raise DisconnectionError(str(exc)) from exc


class RedisHolder:
    """A lazily connected Redis client (no I/O until first command), one per app.

    Kept on the app, like the engine: a second app (a test, a CLI) must not swap the Redis
    that the first one talks to.
    """

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        app.extensions["relais_redis"] = redis_lib.Redis.from_url(url) if url else None

    @property
    def client(self) -> redis_lib.Redis | None:
        return current_app.extensions.get("relais_redis")


db = Database()
api = ProblemApi()
redis = RedisHolder()
