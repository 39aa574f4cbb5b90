"""Alembic migrations are the only way the schema is made: they must yield exactly the models."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

from app import migrations
from app.config import normalize_database_url
from app.models import Base


def _schema_diffs(url: str) -> list:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _assert_round_trip(url: str) -> None:
    migrations.upgrade(url)
    assert _schema_diffs(url) == []
    assert _tables(url) == set(Base.metadata.tables)

    migrations.downgrade(url, "base")
    assert _tables(url) == set()

    migrations.upgrade(url)
    assert _schema_diffs(url) == []
    assert _tables(url) == set(Base.metadata.tables)


def test_sqlite_upgrade_yields_the_models_schema_and_downgrade_works(tmp_path):
    _assert_round_trip(f"sqlite:///{tmp_path / 'fresh.db'}")


@pytest.fixture
def fresh_postgres_url(postgres_only) -> str:
    admin = make_url(normalize_database_url(os.environ["TEST_DATABASE_URL"]))
    name = os.environ.get("RELAIS_TEST_DB", "relais_test") + "_migrations"
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield admin.set(database=name).render_as_string(hide_password=False)
    with engine.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


def test_postgres_upgrade_yields_the_models_schema_and_downgrade_works(fresh_postgres_url):
    _assert_round_trip(fresh_postgres_url)
