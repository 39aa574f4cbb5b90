"""Every process refuses to start on the API's grounds: `relais worker` (and rq's own worker
with `-w workers.worker.RelaisWorker`), `relais cron`, gunicorn's `wsgi.py`; and in
production a database role that Row-Level Security does not bind (superuser, BYPASSRLS, owner)
is refused at start and fails /readyz with a problem body."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from app import create_app
from app.startup import UnsafeConfiguration, refuse_unsafe_database, role_problems
from tests.conftest import TEST_DB

ROOT = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent
GOOD_SECRET = "Vq3-7bX_kP9zR2mL8wN4tY6uH1jC5sD0fG"
KEY = "dGVzdC1jcmVkZW50aWFscy1rZXktMC0wMTIzNDU2Nzg="
# Generous: a refusal takes the time of importing the app; a process that does not refuse
# (today's `rq cron`) would run forever.
GIVE_UP_SECONDS = 120

_CONFIG_VARIABLES = (
    "RELAIS_ENV",
    "SECRET_KEY",
    "API_BASE_URL",
    "PUBLIC_BASE_URL",
    "FRONTEND_BASE_URL",
    "CREDENTIALS_ENCRYPTION_KEYS",
    "DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "REDIS_URL",
)


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARIABLES}
    env.update(values)
    return env


def _production_env(database_url: str, **extra: str) -> dict[str, str]:
    return _env(
        RELAIS_ENV="production",
        SECRET_KEY=GOOD_SECRET,
        API_BASE_URL="https://api.relais.example",
        CREDENTIALS_ENCRYPTION_KEYS=KEY,
        DATABASE_URL=database_url,
        MEDIA_ROOT=str(Path(tempfile.gettempdir()) / "relais-startup-tests-media"),
        SMTP_URL="smtp://mail.relais.example:587",
        MAIL_FROM="Relais <relais@relais.example>",
        **extra,
    )


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=GIVE_UP_SECONDS,
        stdin=subprocess.DEVNULL,
    )


def _worker(redis_url: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # The reports queue: nothing else in the suite leaves jobs there.
    return _run(
        [str(BIN / "relais"), "worker", "--burst", "reports"], {**env, "REDIS_URL": redis_url}
    )


def _rq_worker(redis_url: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(
        [
            str(BIN / "rq"),
            "worker",
            "--worker-class",
            "workers.worker.RelaisWorker",
            "--serializer",
            "json",
            "--burst",
            "--url",
            redis_url,
            f"startup-test-{os.getpid()}",
        ],
        env,
    )


# -- worker and cron without the production variables -------------------------------------------


def test_worker_refuses_to_start_without_the_production_variables(redis_url: str) -> None:
    for run in (_worker, _rq_worker):
        started = run(redis_url, _env(RELAIS_ENV="production"))
        assert started.returncode != 0
        for variable in ("SECRET_KEY", "API_BASE_URL", "CREDENTIALS_ENCRYPTION_KEYS"):
            assert variable in started.stderr
        assert "Traceback" not in started.stderr


def test_worker_starts_when_configured(redis_url: str, tmp_path: Path) -> None:
    # Production settings on a SQLite file: warned about, not refused; a burst with no work
    # exits 0 after building the app in the parent.
    database = f"sqlite:///{tmp_path / 'relais.db'}"
    started = _worker(redis_url, _production_env(database))
    assert started.returncode == 0, started.stderr


def test_cron_refuses_to_start_without_the_production_variables(redis_url: str) -> None:
    started = _run(
        [str(BIN / "relais"), "cron"],
        _env(RELAIS_ENV="production", SECRET_KEY=" " * 40, REDIS_URL=redis_url),
    )
    assert started.returncode != 0
    assert "SECRET_KEY is only blanks" in started.stderr
    assert "CREDENTIALS_ENCRYPTION_KEYS" in started.stderr
    assert "Traceback" not in started.stderr


# -- the run-time role (PostgreSQL) -------------------------------------------------------------


def _production_settings(app_config: dict[str, Any], database_url: str) -> dict[str, Any]:
    return {
        **app_config,
        "ENV": "production",
        "TESTING": False,
        "SECRET_KEY": GOOD_SECRET,
        "API_BASE_URL": "https://api.relais.example",
        "SMTP_URL": "smtp://mail.relais.example:587",
        "MAIL_FROM": "Relais <relais@relais.example>",
        "DATABASE_URL": database_url,
    }


def _role_url(database, role: str) -> str:
    return make_url(database.app_url).set(username=role).render_as_string(hide_password=False)


@pytest.fixture
def extra_roles(database, postgres_only) -> Iterator[dict[str, str]]:
    """A BYPASSRLS role, and one that is a member of the tables' owner (so may act as it).
    Roles are cluster-wide: named after this run's database so parallel runs do not meet."""
    bypass, member = f"{TEST_DB}_bypassrls", f"{TEST_DB}_owner_member"
    owner = make_url(database.owner_url).username
    engine = create_engine(database.owner_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for role in (bypass, member):
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        conn.execute(text(f'CREATE ROLE "{bypass}" LOGIN NOSUPERUSER BYPASSRLS'))
        conn.execute(text(f'CREATE ROLE "{member}" LOGIN NOSUPERUSER NOBYPASSRLS'))
        conn.execute(text(f'GRANT "{owner}" TO "{member}"'))
    yield {"bypassrls": _role_url(database, bypass), "owner": _role_url(database, member)}
    with engine.connect() as conn:
        for role in (bypass, member):
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    engine.dispose()


def _problems_of(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return role_problems(connection)
    finally:
        engine.dispose()


def test_role_check_tells_the_runtime_role_from_unsafe_ones(database, extra_roles) -> None:
    assert _problems_of(database.app_url) == []
    [superuser] = _problems_of(database.owner_url)
    assert "is a superuser" in superuser and "MIGRATION_DATABASE_URL" in superuser
    [bypass] = _problems_of(extra_roles["bypassrls"])
    assert "has BYPASSRLS" in bypass and "superuser" not in bypass
    [owner] = _problems_of(extra_roles["owner"])
    assert "owns" in owner and "of the tables" in owner


def test_production_refuses_a_superuser_at_start(app_config, database, postgres_only) -> None:
    unsafe = create_app(_production_settings(app_config, database.owner_url))
    with pytest.raises(UnsafeConfiguration, match="superuser"):
        refuse_unsafe_database(unsafe.config)
    safe = create_app(_production_settings(app_config, database.app_url))
    refuse_unsafe_database(safe.config)  # the suite's run-time role passes


def test_readyz_fails_with_a_problem_body_for_an_unsafe_role(
    app_config, database, extra_roles
) -> None:
    for url, what in ((database.owner_url, "superuser"), (extra_roles["bypassrls"], "BYPASSRLS")):
        client = create_app(_production_settings(app_config, url)).test_client()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.content_type == "application/problem+json"
        body = response.get_json()
        assert body["checks"]["database"] == "unsafe role"
        assert what in body["detail"] and "DATABASE_URL" in body["detail"]
    ready = create_app(_production_settings(app_config, database.app_url)).test_client()
    assert ready.get("/readyz").status_code == 200


def test_gunicorn_app_and_worker_refuse_a_superuser(database, redis_url, postgres_only) -> None:
    env = _production_env(database.owner_url, REDIS_URL=redis_url)
    imported = _run([sys.executable, "-c", "import wsgi"], env)
    assert imported.returncode != 0
    assert "is a superuser" in imported.stderr
    worker = _worker(redis_url, env)
    assert worker.returncode != 0
    assert "is a superuser" in worker.stderr and "Traceback" not in worker.stderr

    safe = _worker(redis_url, _production_env(database.app_url, REDIS_URL=redis_url))
    assert safe.returncode == 0, safe.stderr
