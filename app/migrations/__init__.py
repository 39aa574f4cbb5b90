"""Schema management: Alembic migrations are the only way the schema is made.

`upgrade()` runs as the owner of the tables (MIGRATION_DATABASE_URL); on PostgreSQL it then
grants the run-time role (the user of DATABASE_URL) plain DML rights, so the app connects as a
role that is neither owner nor superuser and Row-Level Security applies to it, and the backup
role (BACKUP_DATABASE_ROLE), when there is one, read-only rights for pg_dump.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from app.extensions import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent

# The GUCs our RLS policies read, set per transaction by app.tenancy.
TENANT_SETTING = "app.agency_id"
BYPASS_SETTING = "app.rls_bypass"


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _with_connection(url: str, action) -> None:
    if url.startswith("sqlite"):
        engine = make_engine(url)
    else:
        engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        action(cfg)
    engine.dispose()


def upgrade(
    migration_url: str,
    app_url: str | None = None,
    revision: str = "head",
    backup_role: str | None = None,
) -> None:
    if migration_url.startswith("sqlite:///"):
        Path(migration_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _with_connection(migration_url, lambda cfg: command.upgrade(cfg, revision))
    if app_url and migration_url.startswith("postgresql"):
        grant_runtime_role(migration_url, app_url)
    if backup_role and migration_url.startswith("postgresql"):
        grant_backup_role(migration_url, backup_role)


def downgrade(migration_url: str, revision: str = "base") -> None:
    _with_connection(migration_url, lambda cfg: command.downgrade(cfg, revision))


def current_revision(url: str) -> str | None:
    """The revision the database is at (None: no migration applied)."""
    if url.startswith("sqlite"):
        engine = make_engine(url)
    else:
        engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def downgrade_target(current: str, revision: str) -> str | None:
    """The revision `relais db downgrade --revision` leads to from `current` (-N: N steps)."""
    if revision == "base":
        return None
    if not (revision.startswith("-") and revision[1:].isdigit()):
        return revision
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    target: str | None = current
    for _ in range(int(revision[1:])):
        if target is None:
            break
        down = script.get_revision(target).down_revision
        target = down if isinstance(down, str) or down is None else down[0]
    return target


def describe(revision: str | None) -> str:
    """`<id> (<its message>)`, or `base (no migration applied)`, for people."""
    if revision is None:
        return "base (no migration applied)"
    script = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
    doc = (script.doc or "").strip() if script is not None else ""
    return f"{revision} ({doc})" if doc else revision


def grant_runtime_role(migration_url: str, app_url: str) -> None:
    owner = make_url(migration_url).username
    runtime = make_url(app_url).username
    if not runtime or runtime == owner:
        return
    engine = create_engine(migration_url, poolclass=NullPool)
    with engine.begin() as conn:
        role = conn.dialect.identifier_preparer.quote(runtime)
        conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        conn.execute(
            text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        )
        conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    engine.dispose()


class BackupRoleUnfit(RuntimeError):
    """BACKUP_DATABASE_ROLE names a role that cannot take a complete dump."""


def grant_backup_role(migration_url: str, role_name: str) -> None:
    """Let `role_name` read every table and sequence, and nothing more, for pg_dump.

    Forced Row-Level Security applies to the tables' owner too: pg_dump as the owner stops at
    the first tenant table, and with --enable-row-security it writes them out empty (no tenant
    is set). Only a role with BYPASSRLS reads every row, and only a superuser can give that
    attribute, so the role is created once by hand (README, "Backups"); the grants follow each
    migration here, so tables added later are in the next dump too.
    """
    engine = create_engine(migration_url, poolclass=NullPool)
    with engine.begin() as conn:
        attributes = conn.execute(
            text("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = :name"),
            {"name": role_name},
        ).first()
        if attributes is None or not (attributes.rolbypassrls or attributes.rolsuper):
            problem = "does not exist" if attributes is None else "lacks BYPASSRLS"
            raise BackupRoleUnfit(
                f"BACKUP_DATABASE_ROLE {role_name!r} {problem}: its dumps would miss every "
                f"tenant's rows. As a superuser: CREATE ROLE {role_name} LOGIN BYPASSRLS "
                f"PASSWORD '…' (or ALTER ROLE {role_name} BYPASSRLS), then run this again."
            )
        role = conn.dialect.identifier_preparer.quote(role_name)
        conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    engine.dispose()


def tenant_policy_sql(table: str, column: str = "agency_id") -> list[str]:
    """Row-Level Security, forced (owners obey it too), on one tenant table."""
    predicate = (
        f"({column} = current_setting('{TENANT_SETTING}', true) "
        f"OR current_setting('{BYPASS_SETTING}', true) = 'on')"
    )
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING {predicate} WITH CHECK {predicate}",
    ]


def drop_tenant_policy_sql(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def create_fresh_database(admin_url: str, db_name: str, runtime_role: str) -> tuple[str, str]:
    """Drop and recreate `db_name`, migrate it as its owner and make sure `runtime_role`
    exists (neither superuser nor BYPASSRLS) with DML rights, so RLS applies to it.

    For the test suite and the benchmarks; returns (owner URL, run-time URL).
    """
    from app.config import normalize_database_url

    admin = make_url(normalize_database_url(admin_url))
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": db_name},
        )
        conn.execute(text(f"DROP DATABASE IF EXISTS {quote(db_name)}"))
        conn.execute(text(f"CREATE DATABASE {quote(db_name)}"))
        role_exists = conn.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": runtime_role}
        ).scalar()
        if not role_exists:
            conn.execute(text(f"CREATE ROLE {quote(runtime_role)} LOGIN NOSUPERUSER NOBYPASSRLS"))
    engine.dispose()
    owner_url = admin.set(database=db_name).render_as_string(hide_password=False)
    app_url = admin.set(database=db_name, username=runtime_role, password=None).render_as_string(
        hide_password=False
    )
    upgrade(owner_url, app_url)
    return owner_url, app_url
