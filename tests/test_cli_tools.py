"""Tools that must refuse or say clearly what they did: `relais demo` (never in production, and
its curl aimed at the running `make run`), `relais db downgrade` (asks first, prints the real
revision), `relais db upgrade` without the owner's URL (names MIGRATION_DATABASE_URL),
`relais run-embedded --host` beyond loopback (needs a real secret)."""

from __future__ import annotations

import json
import os
import socket
import stat
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.pool import NullPool

from app import create_app, embedded, migrations
from app.config import DEFAULT_SECRET_KEY, Config
from app.extensions import db
from app.models import User
from tests.conftest import TEST_DB

GOOD_SECRET = "Vq3-7bX_kP9zR2mL8wN4tY6uH1jC5sD0fG"


def _runner(app_config: dict[str, Any], **overrides: Any):
    return create_app({**app_config, **overrides}).test_cli_runner()


# -- relais demo --------------------------------------------------------------------------------


def test_demo_refuses_a_production_database(app, app_config) -> None:
    result = _runner(
        app_config,
        ENV="production",
        TESTING=False,
        SECRET_KEY=GOOD_SECRET,
        API_BASE_URL="https://api.relais.example",
        SMTP_URL="smtp://mail.relais.example:587",
        MAIL_FROM="Relais <relais@relais.example>",
    ).invoke(args=["demo"])
    assert result.exit_code == 1
    assert "RELAIS_ENV=production" in result.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "demo@relais.test")) is None


def test_demo_aims_its_curl_at_the_running_make_run(app_config, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(embedded, "VAR", tmp_path)
    # What `make run PORT=8301` writes while it runs.
    (tmp_path / "run.json").write_text(
        json.dumps(
            {"url": "http://127.0.0.1:8301", "host": "127.0.0.1", "port": 8301, "pid": os.getpid()}
        )
    )
    result = _runner(app_config).invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "curl -s http://127.0.0.1:8301/v1/brands" in result.output
    assert ":8000" not in result.output


def test_demo_without_a_running_make_run_says_so(app_config, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(embedded, "VAR", tmp_path)
    # A run.json left by a `make run` that died: its process is gone.
    (tmp_path / "run.json").write_text(
        json.dumps({"url": "http://127.0.0.1:8301", "pid": 2**22 + 7})
    )
    result = _runner(app_config, API_BASE_URL="http://127.0.0.1:8123").invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "no `make run` is running" in result.output
    assert "curl -s http://127.0.0.1:8123/v1/brands" in result.output


def test_run_file_tells_a_local_client_where_to_go(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(embedded, "VAR", tmp_path)
    embedded.write_run_file("0.0.0.0", 8301)
    assert embedded.running_instance()["url"] == "http://127.0.0.1:8301"
    embedded.remove_run_file()
    assert embedded.running_instance() is None
    assert embedded.client_url("::", 8000) == "http://[::1]:8000"


# -- relais db downgrade / upgrade --------------------------------------------------------------


def _revisions() -> tuple[str, str]:
    script = ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))
    head = script.get_revision(script.get_current_head())
    return head.revision, head.down_revision


def test_downgrade_asks_first_and_prints_the_revision_reached(app_config, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'relais.db'}"
    migrations.upgrade(url)
    head, previous = _revisions()
    runner = _runner(app_config, DATABASE_URL=url, MIGRATION_DATABASE_URL=url)

    declined = runner.invoke(args=["db", "downgrade"], input="n\n")
    assert declined.exit_code == 1
    assert f"from {head} (" in declined.output and f"to {previous} (" in declined.output
    assert "Tables and columns added by the later migrations are dropped" in declined.output
    assert migrations.current_revision(url) == head

    done = runner.invoke(args=["db", "downgrade", "--yes"])
    assert done.exit_code == 0, done.output
    assert migrations.current_revision(url) == previous
    assert f"database at {previous} (" in done.output
    assert "-1" not in done.stdout  # (stderr has the log lines, their dates included)

    up = runner.invoke(args=["db", "upgrade"])
    assert up.exit_code == 0, up.output
    assert f"database at {head} (" in up.output

    confirmed = runner.invoke(args=["db", "downgrade", "--revision", "base"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "database at base (no migration applied)" in confirmed.output
    nothing = runner.invoke(args=["db", "downgrade", "--yes"])
    assert nothing.exit_code == 1 and "nothing to undo" in nothing.output


@pytest.fixture
def empty_postgres(database, postgres_only):
    """A database with no schema yet, owned by the suite's owner; the run-time role may
    connect but not create."""
    name = f"{TEST_DB}_unmigrated"
    owner = make_url(database.owner_url)
    engine = create_engine(owner, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(database.app_url).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def test_upgrade_as_the_runtime_role_names_migration_database_url(app_config, empty_postgres):
    result = _runner(
        app_config, DATABASE_URL=empty_postgres, MIGRATION_DATABASE_URL=empty_postgres
    ).invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a message, not an uncaught exception
    assert "permission denied" in result.output
    assert "set MIGRATION_DATABASE_URL to the owner's URL" in result.output
    assert "because MIGRATION_DATABASE_URL is not set" in result.output
    assert "Traceback" not in result.output


# -- relais run-embedded beyond loopback --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_embedded(host: str, env: dict[str, str]):
    from app.cli import main

    # The `relais` group builds an app from the environment's Config first (that is where the
    # command is registered); Config was read at import, so SECRET_KEY here does not reach it.

    return CliRunner().invoke(
        main, ["run-embedded", "--host", host, "--port", str(_free_port())], env=env
    )


@pytest.mark.parametrize("secret", ["short-secret", "ab" * 24, "k" * 48])
def test_run_embedded_refuses_a_wide_bind_with_a_weak_secret(monkeypatch, tmp_path, secret):
    monkeypatch.setattr(embedded, "VAR", tmp_path)
    monkeypatch.setattr(Config, "SECRET_KEY_FILE", str(tmp_path / "app-secret"))
    result = _run_embedded("0.0.0.0", {"SECRET_KEY": secret, "RELAIS_ENV": "development"})
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "secrets.token_urlsafe" in result.output  # says how to set one
    assert not (tmp_path / "run.json").exists()  # nothing was started


def test_make_run_refuses_the_published_default_even_on_loopback(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded, "VAR", tmp_path)
    monkeypatch.setenv("SECRET_KEY", DEFAULT_SECRET_KEY)
    assert embedded.run(host="127.0.0.1", port=_free_port()) == 2


def test_make_run_shares_one_generated_secret_and_may_bind_widely_with_it(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded, "VAR", tmp_path)
    monkeypatch.setenv("SECRET_KEY", " " * 40)  # blank counts as unset
    first = embedded.shared_secret("0.0.0.0")
    path = tmp_path / "secret_key"
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert embedded.shared_secret("127.0.0.1") == first  # kept for later runs
    assert embedded.is_loopback("localhost") and not embedded.is_loopback("0.0.0.0")


def test_make_run_gives_its_children_the_shared_secret(monkeypatch, tmp_path):
    """API, worker and cron of one `make run` get the same SECRET_KEY (so the same derived
    encryption key); stopped before anything really starts."""
    monkeypatch.setattr(embedded, "VAR", tmp_path)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # no Redis is started
    seen: list[tuple[str, dict[str, str]]] = []

    def fake_spawn(self, args, name):
        seen.append((name, dict(self.env)))
        raise embedded.StartFailed("stopped by the test")

    def fake_migrate(args, env, **kwargs):
        seen.append(("db upgrade", dict(env)))

    monkeypatch.setattr(embedded.Supervisor, "spawn", fake_spawn)
    monkeypatch.setattr(embedded.subprocess, "run", fake_migrate)
    assert embedded.run(host="127.0.0.1", port=_free_port()) == 1
    secret = (tmp_path / "secret_key").read_text().strip()
    assert [name for name, _ in seen][:2] == ["db upgrade", "API (gunicorn, 2 workers)"]
    assert all(env["SECRET_KEY"] == secret for _, env in seen)
