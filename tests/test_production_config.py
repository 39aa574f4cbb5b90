"""Start-up refusals (app/startup.py): no public secret signs anything, production needs a real
SECRET_KEY, the encryption keys and an explicit public API_BASE_URL, and says so when it cannot
refuse (SQLite)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.config import DEFAULT_SECRET_KEY, TestConfig, config_as_dict
from app.security import crypto, secret_key
from app.startup import UnsafeConfiguration

GOOD_SECRET = "Vq3-7bX_kP9zR2mL8wN4tY6uH1jC5sD0fG"  # 34 characters, 32 distinct


def _production(**overrides: Any) -> dict[str, Any]:
    settings = config_as_dict(TestConfig)
    settings.update(
        ENV="production",
        TESTING=False,
        SECRET_KEY=GOOD_SECRET,
        API_BASE_URL="https://api.relais.example",
        DATABASE_URL="postgresql+psycopg://relais@db/relais",
        SMTP_URL="smtp://mail.example.com",
        MAIL_FROM="Relais <relais@example.com>",
    )
    settings.update(overrides)
    return settings


def _development(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    settings = config_as_dict(TestConfig)
    settings.update(
        ENV="development",
        SECRET_KEY="",
        SECRET_KEY_FILE=str(tmp_path / "var" / "secret_key"),
        CREDENTIALS_ENCRYPTION_KEYS=[],
    )
    settings.update(overrides)
    return settings


# -- SECRET_KEY ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        DEFAULT_SECRET_KEY,
        f"  {DEFAULT_SECRET_KEY}\n",
        TestConfig.SECRET_KEY,
        "",
        " " * 40,
        "short-secret",
        "x" * 31,
        "k" * 48,
        "abcabcabcabcabcabcabcabcabcabcabcabc",
    ],
    ids=[
        "default",
        "default-padded",
        "test-key",
        "empty",
        "40-spaces",
        "short",
        "31",
        "one-char",
        "three-chars",
    ],
)
def test_production_refuses_a_weak_or_published_secret_key(secret: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="SECRET_KEY") as refused:
        create_app(_production(SECRET_KEY=secret))
    assert "secrets.token_urlsafe" in str(refused.value)  # and says how to make one


def test_production_starts_with_a_strong_secret_key() -> None:
    app = create_app(_production())
    assert app.config["ENV"] == "production"


def test_random_secrets_pass_the_check() -> None:
    import secrets

    # token_hex(16) is the shortest random secret it must accept.
    for _ in range(500):
        assert secret_key.weakness(secrets.token_hex(16)) is None
        assert secret_key.weakness(secrets.token_urlsafe(48)) is None


@pytest.mark.parametrize("env", ["development", "test"])
def test_no_environment_signs_with_the_published_default(tmp_path: Path, env: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="published value"):
        create_app(_development(tmp_path, ENV=env, SECRET_KEY=DEFAULT_SECRET_KEY))


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    first = create_app(_development(tmp_path))
    path = tmp_path / "var" / "secret_key"
    generated = first.config["SECRET_KEY"]
    assert generated != DEFAULT_SECRET_KEY and secret_key.weakness(generated) is None
    assert path.read_text().strip() == generated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # A later run (or another process of the same `make run`) signs with the same secret...
    again = create_app(_development(tmp_path))
    assert again.config["SECRET_KEY"] == generated
    # ...and another checkout with another one.
    elsewhere = create_app(_development(tmp_path / "other"))
    assert elsewhere.config["SECRET_KEY"] != generated

    # The development encryption key derives from the generated secret, not a published one.
    stored = crypto.CredentialsCipher([crypto._development_key(generated)])
    with first.app_context():
        assert stored.decrypt(crypto.encrypt({"token": "t"})) == {"token": "t"}
    public = crypto.CredentialsCipher([crypto._development_key(DEFAULT_SECRET_KEY)])
    with first.app_context(), pytest.raises(crypto.CredentialsUnreadable):
        public.decrypt(crypto.encrypt({"token": "t"}))


def test_a_blank_secret_in_development_means_the_generated_one(tmp_path: Path) -> None:
    app = create_app(_development(tmp_path, SECRET_KEY="   "))
    assert app.config["SECRET_KEY"] == (tmp_path / "var" / "secret_key").read_text().strip()


def test_an_explicit_secret_wins_over_the_generated_one(tmp_path: Path) -> None:
    app = create_app(_development(tmp_path, SECRET_KEY=GOOD_SECRET))
    assert app.config["SECRET_KEY"] == GOOD_SECRET
    assert not (tmp_path / "var" / "secret_key").exists()


def _generate(path: str, queue: Any) -> None:
    queue.put(secret_key.load_or_create(Path(path)))


def test_processes_starting_together_share_one_generated_secret(tmp_path: Path) -> None:
    path = str(tmp_path / "var" / "secret_key")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_generate, args=(path, queue)) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    values = {queue.get() for _ in processes}
    assert len(values) == 1
    assert values == {Path(path).read_text().strip()}
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["secret_key"]  # no leftovers


def test_a_secret_file_readable_by_others_is_taken_back(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    value = secret_key.load_or_create(path)
    os.chmod(path, 0o644)
    assert secret_key.load_or_create(path) == value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- API_BASE_URL / FRONTEND_BASE_URL -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",  # Config's fallback: not set at all
        "",
        "http://api.relais.example",
        "https://127.0.0.1",
        "https://localhost:8443",
        "https://[::1]",
        "https://0.0.0.0",
        "https://api.relais.example/?x=1",
        "api.relais.example",
    ],
)
def test_production_needs_a_public_https_api_base_url(url: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="API_BASE_URL"):
        create_app(_production(API_BASE_URL=url))


def test_frontend_base_url_is_optional_but_public_https_when_set() -> None:
    assert create_app(_production(FRONTEND_BASE_URL="")).config["FRONTEND_BASE_URL"] == ""
    assert create_app(_production(FRONTEND_BASE_URL="https://app.relais.example"))
    with pytest.raises(UnsafeConfiguration, match="FRONTEND_BASE_URL"):
        create_app(_production(FRONTEND_BASE_URL="http://app.relais.example"))
    with pytest.raises(UnsafeConfiguration, match="FRONTEND_BASE_URL"):
        create_app(_production(FRONTEND_BASE_URL="https://localhost:3000"))


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(UnsafeConfiguration) as refused:
        create_app(
            _production(
                SECRET_KEY=" " * 40,
                API_BASE_URL="http://127.0.0.1:8000",
                CREDENTIALS_ENCRYPTION_KEYS=[],
            )
        )
    message = str(refused.value)
    for variable in ("SECRET_KEY", "API_BASE_URL", "CREDENTIALS_ENCRYPTION_KEYS"):
        assert variable in message
    assert len(refused.value.problems) == 3


# -- what production cannot refuse ----------------------------------------------------------------


def test_production_on_sqlite_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(_production(DATABASE_URL="sqlite:///var/relais.db"))
    assert any(
        r.levelno == logging.WARNING and "DATABASE_URL" in r.getMessage() for r in caplog.records
    )


def test_production_on_postgresql_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(_production())
    assert not [r for r in caplog.records if "DATABASE_URL" in r.getMessage()]
