"""RELAIS_ENV=production refuses unsafe settings, or says so when it cannot refuse."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app import create_app
from app.config import DEFAULT_SECRET_KEY, TestConfig, config_as_dict

GOOD_SECRET = "k" * 48


def _production(**overrides: Any) -> dict[str, Any]:
    settings = config_as_dict(TestConfig)
    settings.update(
        ENV="production",
        TESTING=False,
        SMTP_URL="smtp://mail.example.com",
        MAIL_FROM="Relais <relais@example.com>",
        **overrides,
    )
    return settings


@pytest.mark.parametrize(
    "secret",
    [DEFAULT_SECRET_KEY, "", "short-secret", "x" * 31],
    ids=["default", "empty", "short", "31"],
)
def test_production_refuses_a_weak_secret_key(secret: str) -> None:
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(_production(SECRET_KEY=secret))


def test_production_starts_with_a_strong_secret_key() -> None:
    app = create_app(
        _production(SECRET_KEY=GOOD_SECRET, DATABASE_URL="postgresql+psycopg://relais@db/relais")
    )
    assert app.config["ENV"] == "production"


def test_development_keeps_the_default_secret_key() -> None:
    settings = config_as_dict(TestConfig)
    settings.update(ENV="development", SECRET_KEY=DEFAULT_SECRET_KEY)
    assert create_app(settings).config["SECRET_KEY"] == DEFAULT_SECRET_KEY


def test_production_on_sqlite_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(_production(SECRET_KEY=GOOD_SECRET, DATABASE_URL="sqlite:///var/relais.db"))
    assert any(
        r.levelno == logging.WARNING and "DATABASE_URL" in r.getMessage() for r in caplog.records
    )


def test_production_on_postgresql_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(
            _production(
                SECRET_KEY=GOOD_SECRET, DATABASE_URL="postgresql+psycopg://relais@db/relais"
            )
        )
    assert not [r for r in caplog.records if "DATABASE_URL" in r.getMessage()]
