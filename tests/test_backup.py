"""Backup and restore on PostgreSQL, as the README's "Backups" paragraph tells an operator.

The roles are the production ones: an owner that is not a superuser (so forced RLS applies to
it), the run-time role, and a backup role with BYPASSRLS that `relais db upgrade` grants
read-only rights. Two agencies are seeded through the API; the dump taken as the backup role is
restored into a new database as the owner, `relais db upgrade` grants the roles there, and the
restored data reads back through the API as the run-time role, each agency seeing its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from app import create_app
from app.config import normalize_database_url
from app.models import Base
from tests.conftest import PASSWORD, TEST_DB, sign_up

pytestmark = pytest.mark.usefixtures("postgres_only")

OWNER, RUNTIME, BACKUP = (f"{TEST_DB}_bk_{n}" for n in ("owner", "app", "backup"))
SOURCE_DB, RESTORED_DB = f"{TEST_DB}_bk_source", f"{TEST_DB}_bk_restored"


@dataclass
class Cluster:
    admin_url: Any  # sqlalchemy URL of a superuser

    def url(self, role: str, database: str) -> str:
        """A libpq URL (what pg_dump takes); the app normalizes it for psycopg itself."""
        url = self.admin_url.set(drivername="postgresql", username=role, password=None)
        return url.set(database=database).render_as_string(hide_password=False)

    def admin(self, *statements: str) -> None:
        engine = create_engine(self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
        engine.dispose()

    def drop_database(self, name: str) -> None:
        self.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{name}"',
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian: postgresql-client)")
    admin_url = make_url(normalize_database_url(os.environ["TEST_DATABASE_URL"]))
    cluster = Cluster(admin_url)
    for database in (SOURCE_DB, RESTORED_DB):
        cluster.drop_database(database)
    for role, attributes in ((OWNER, "NOBYPASSRLS"), (RUNTIME, "NOBYPASSRLS"),
                             (BACKUP, "BYPASSRLS")):  # fmt: skip
        cluster.admin(
            f'DROP ROLE IF EXISTS "{role}"', f'CREATE ROLE "{role}" LOGIN NOSUPERUSER {attributes}'
        )
    for database in (SOURCE_DB, RESTORED_DB):
        cluster.admin(f'CREATE DATABASE "{database}" OWNER "{OWNER}"')
    yield cluster
    for database in (SOURCE_DB, RESTORED_DB):
        cluster.drop_database(database)
    for role in (OWNER, RUNTIME, BACKUP):
        cluster.admin(f'DROP ROLE IF EXISTS "{role}"')


def _app(app_config: dict[str, Any], cluster: Cluster, database: str):
    return create_app(
        {
            **app_config,
            "DATABASE_URL": normalize_database_url(cluster.url(RUNTIME, database)),
            "MIGRATION_DATABASE_URL": normalize_database_url(cluster.url(OWNER, database)),
            "BACKUP_DATABASE_ROLE": BACKUP,
        }
    )


def _relais_db_upgrade(app) -> None:
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output


def _seed_agency(client, name: str) -> dict[str, Any]:
    email = f"{name.lower()}@backup.example"
    signup = sign_up(client, email=email, password=PASSWORD, name=name)
    assert signup.status_code == 201, signup.get_json()
    headers = {"Authorization": f"Bearer {signup.get_json()['tokens']['access_token']}"}
    brands = []
    for i in range(2):
        brand = client.post("/v1/brands", json={"name": f"{name} {i}"}, headers=headers)
        assert brand.status_code == 201, brand.get_json()
        brands.append(brand.get_json()["id"])
        post = client.post(
            f"/v1/brands/{brands[-1]}/posts", json={"text": f"hello from {name}"}, headers=headers
        )
        assert post.status_code == 201, post.get_json()
    return {"headers": headers, "brands": brands}


def _row_counts(url: str) -> dict[str, int]:
    engine = create_engine(normalize_database_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        counts = {
            table.name: conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one()
            for table in Base.metadata.sorted_tables
        }
    engine.dispose()
    return counts


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_backup_role_dumps_everything_and_a_restore_reads_back(app_config, cluster, tmp_path):
    source = _app(app_config, cluster, SOURCE_DB)
    _relais_db_upgrade(source)
    client = source.test_client()
    agencies = {name: _seed_agency(client, name) for name in ("Alpha", "Beta")}

    # Why a backup role: forced RLS stops the owner's dump, or empties it.
    as_owner = _run("pg_dump", "--dbname", cluster.url(OWNER, SOURCE_DB), "-f", os.devnull)
    assert as_owner.returncode != 0
    assert "row-level security" in as_owner.stderr
    filtered = _run("pg_dump", "--dbname", cluster.url(OWNER, SOURCE_DB), "--enable-row-security",
                    "--data-only", "--table", "agencies")  # fmt: skip
    assert filtered.returncode == 0, filtered.stderr
    copied = filtered.stdout.split("COPY public.agencies", 1)[1].split("\\.", 1)[0]
    assert copied.count("\n") == 1  # the COPY line itself: no row

    # The procedure: dump as the backup role, restore as the owner, then `relais db upgrade`.
    dump = tmp_path / "relais.dump"
    dumped = _run("pg_dump", "--dbname", cluster.url(BACKUP, SOURCE_DB), "--format", "custom",
                  "--file", str(dump))  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr
    restored = _run("pg_restore", "--dbname", cluster.url(OWNER, RESTORED_DB), "--no-owner",
                    "--no-privileges", "--exit-on-error", str(dump))  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    target = _app(app_config, cluster, RESTORED_DB)
    _relais_db_upgrade(target)

    before = _row_counts(cluster.url(BACKUP, SOURCE_DB))
    after = _row_counts(cluster.url(BACKUP, RESTORED_DB))
    assert after == before
    assert (after["agencies"], after["brands"], after["posts"]) == (2, 4, 4)

    # RLS came back with the schema: the run-time role sees nothing without a tenant.
    unscoped = create_engine(normalize_database_url(cluster.url(RUNTIME, RESTORED_DB)),
                             poolclass=NullPool)  # fmt: skip
    with unscoped.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM brands")).scalar_one() == 0
    unscoped.dispose()

    # Through the API, as the run-time role: each agency reads its own data, and only it.
    reader = target.test_client()
    for agency in agencies.values():
        listed = reader.get("/v1/brands", headers=agency["headers"])
        assert listed.status_code == 200, listed.get_json()
        assert sorted(b["id"] for b in listed.get_json()["items"]) == sorted(agency["brands"])
        posts = reader.get(f"/v1/brands/{agency['brands'][0]}/posts", headers=agency["headers"])
        assert posts.status_code == 200 and len(posts.get_json()["items"]) == 1
    alpha, beta = agencies["Alpha"], agencies["Beta"]
    other = reader.get(f"/v1/brands/{beta['brands'][0]}", headers=alpha["headers"])
    assert other.status_code == 404


def test_upgrade_refuses_a_backup_role_without_bypassrls(app_config, cluster):
    cluster.admin(f'ALTER ROLE "{BACKUP}" NOBYPASSRLS')
    app = _app(app_config, cluster, SOURCE_DB)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code != 0
    assert "lacks BYPASSRLS" in result.output and "ALTER ROLE" in result.output
