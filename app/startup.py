"""What a process refuses to start with.

The API (`create_app`, then `wsgi.py` for the database role), `relais worker`
(`workers/worker.py`) and `relais cron` (`workers/schedule.py`) run the same checks. A worker
started without the production variables would otherwise fall back to development keys, fail to
read every stored credential and act on that; it must stop before its first job instead.

Every problem is listed in one message, so an operator fixes them all in one round.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from app.config import Config, TestConfig, config_as_dict
from app.security import secret_key

log = logging.getLogger(__name__)

_UNSET_API_BASE_URL = "http://127.0.0.1:8000"  # Config's fallback when neither name is set


class UnsafeConfiguration(RuntimeError):
    """The process must not start; the message lists why and how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"refusing to start:\n{lines}")


# -- configuration ------------------------------------------------------------------------------


def resolve_secret_key(config: MutableMapping[str, Any]) -> None:
    """In development, no SECRET_KEY (or blanks) means the one generated under ./var (made on
    first run)."""
    if not (config.get("SECRET_KEY") or "").strip() and config.get("ENV") == "development":
        config["SECRET_KEY"] = secret_key.load_or_create(Path(config["SECRET_KEY_FILE"]))


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Why this configuration must not run, from its values alone (no I/O)."""
    env = config.get("ENV")
    secret = config.get("SECRET_KEY") or ""
    problems: list[str] = []
    if env == "production":
        weak = secret_key.weakness(secret)
        if weak:
            problems.append(f"{weak}; {secret_key.HOW_TO_SET}")
        problems += _base_url_problems(config)
        missing_mail = [name for name in ("SMTP_URL", "MAIL_FROM") if not config.get(name)]
        if missing_mail:
            problems.append(
                f"{' and '.join(missing_mail)} not set: invitations, sign-up confirmations and "
                "password resets go by e-mail. For example "
                "SMTP_URL=smtp://user:password@mail.example.com:587 and "
                "MAIL_FROM='Relais <relais@example.com>'"
            )
        if not config.get("CREDENTIALS_ENCRYPTION_KEYS"):
            problems.append(
                "CREDENTIALS_ENCRYPTION_KEYS is not set: without it this process would derive "
                "another key and could read no stored credential. Give every process (API, "
                "workers, cron) the same comma-separated Fernet keys, newest first; make one "
                "with `python3 -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        return problems
    # The suite signs with TestConfig's key, published like the old default: fine under
    # ENV=test only.
    if secret_key.is_public(secret) and not (env == "test" and secret == TestConfig.SECRET_KEY):
        problems.append(
            f"{secret_key.weakness(secret)}. Unset SECRET_KEY in development (a random one is "
            f"generated into {config.get('SECRET_KEY_FILE')}), or {secret_key.HOW_TO_SET}"
        )
    elif not secret.strip() and env != "development":  # development generates one
        problems.append(f"SECRET_KEY is empty; {secret_key.HOW_TO_SET}")
    return problems


def _base_url_problems(config: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    api = (config.get("API_BASE_URL") or "").strip()
    if not api or api == _UNSET_API_BASE_URL:
        problems.append(
            "API_BASE_URL is not set: media links that networks download and Relais's own pages "
            "would point at http://127.0.0.1:8000. Set it to the https:// address this API is "
            "reached at from outside, e.g. API_BASE_URL=https://api.example.com"
        )
    else:
        problem = _public_https_problem(api)
        if problem:
            problems.append(f"API_BASE_URL={api!r} {problem}")
    frontend = (config.get("FRONTEND_BASE_URL") or "").strip()
    if frontend:
        problem = _public_https_problem(frontend)
        if problem:
            problems.append(
                f"FRONTEND_BASE_URL={frontend!r} {problem} (or leave it empty: links in e-mails "
                "then go to Relais's own pages under API_BASE_URL)"
            )
    return problems


def _public_https_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https:// URL (links carry tokens; the TLS proxy's address)"
    if parts.query or parts.fragment:
        return "must be a base URL, without a query or fragment"
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    else:
        local = address.is_loopback or address.is_unspecified
    if local:
        return "points at this machine; nobody else can follow links to it"
    return None


def check_config(config: MutableMapping[str, Any]) -> None:
    """Resolve the development secret, then refuse or warn. Called by every process."""
    resolve_secret_key(config)
    problems = config_problems(config)
    if problems:
        raise UnsafeConfiguration(problems)
    weak = secret_key.weakness(config.get("SECRET_KEY"))
    if weak and config.get("ENV") == "development":
        log.warning(
            "%s: acceptable on loopback only (`make run` refuses a wider bind with it)", weak
        )


def refuse_unsafe_environment(process: str = "relais cron") -> None:
    """For processes that build no app (`relais cron`): the checks on the environment's
    Config."""
    problems = config_problems(config_as_dict(Config))
    if problems:
        raise SystemExit(f"[relais] {process} {UnsafeConfiguration(problems)}")


# -- the database role --------------------------------------------------------------------------

# Row-Level Security binds neither a superuser nor a BYPASSRLS role, and a table's owner (or a
# member of the owner role) can switch it off: each would read every agency's rows.
_ROLE_QUERY = text(
    """
    SELECT current_user AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
           (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
               AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owned_tables
      FROM pg_roles r WHERE r.rolname = current_user
    """
)


def role_problems(connection: Any) -> list[str]:
    """Why the role behind `connection` (PostgreSQL) must not serve tenants; [] when it may."""
    row = connection.execute(_ROLE_QUERY).one()
    what = []
    if row.superuser:
        what.append("is a superuser")
    if row.bypassrls:
        what.append("has BYPASSRLS")
    if row.owned_tables:
        what.append(f"owns {row.owned_tables} of the tables (or is a member of their owner)")
    if not what:
        return []
    return [
        f"the database role {row.name!r} {' and '.join(what)}: Row-Level Security would not "
        "apply to it, and one agency could read another's data after a single bug. Connect "
        "DATABASE_URL as the run-time role (NOSUPERUSER NOBYPASSRLS, not the owner; see the "
        "README's Production section) and keep the owner for MIGRATION_DATABASE_URL"
    ]


def database_problems(config: Mapping[str, Any]) -> list[str]:
    """In production on PostgreSQL, check the run-time role. Unreachable: warn, and let
    /readyz (which checks again) keep the process out of rotation."""
    url = config.get("DATABASE_URL") or ""
    if config.get("ENV") != "production" or not url.startswith("postgresql"):
        return []
    engine = create_engine(url, poolclass=NullPool)  # nothing kept open across a fork
    try:
        with engine.connect() as connection:
            return role_problems(connection)
    except OperationalError as exc:
        log.warning(
            "could not check the database role at start (%s); /readyz checks it again",
            str(exc.orig).strip().splitlines()[0] if exc.orig else exc,
        )
        return []
    finally:
        engine.dispose()


def refuse_unsafe_database(config: Mapping[str, Any]) -> None:
    problems = database_problems(config)
    if problems:
        raise UnsafeConfiguration(problems)
