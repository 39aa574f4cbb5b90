"""Where a message goes: an SMTP server (SMTP_URL), or files under MAIL_DIR.

A transport either delivers or raises one of two errors, and the outbox acts on which:
`TemporaryFailure` (a 4xx, a refused or lost connection, a TLS or login problem an operator
can fix) is retried with backoff; `PermanentFailure` (a 5xx about this message: no such
mailbox, refused content) is not, since sending again would only be refused again.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

from app.models.base import utcnow

log = logging.getLogger("relais.mail")


class TemporaryFailure(Exception):
    """Worth another try later."""


class PermanentFailure(Exception):
    """The server refused this message for good."""


class Transport(Protocol):
    def send(self, message: EmailMessage, *, name: str) -> str:
        """Deliver `message` (named `name` where a name helps); return where it went."""
        ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise RuntimeError(
                "SMTP_URL must look like smtp://user:password@host:587 (STARTTLS) or "
                "smtps://user:password@host:465 (TLS)"
            )
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls"}
        starttls = query.get("starttls", "true")
        if unknown or starttls not in ("true", "false"):
            raise RuntimeError("SMTP_URL takes one option: ?starttls=true (default) or false")
        implicit_tls = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if implicit_tls else 587)
        except ValueError as exc:
            raise RuntimeError("SMTP_URL has a port that is not a number") from exc
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit_tls,
            starttls=not implicit_tls and starttls == "true",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class SmtpTransport:
    def __init__(self, settings: SmtpSettings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout

    def send(self, message: EmailMessage, *, name: str) -> str:
        s = self.settings
        try:
            smtp = self._connect()
            with smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                smtp.send_message(message)
            where = f"smtp://{s.host}:{s.port}"
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = f"recipient refused: {exc.recipients}"
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentFailure(error) from exc
            raise TemporaryFailure(error) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # The operator's credentials, not this message: retrying gives them time to fix it.
            raise TemporaryFailure(f"the mail server refused our login: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            error = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(error) from exc
            raise TemporaryFailure(error) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS, lost
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc
        log.info("mail to %s: %s -> %s", message["To"], message["Subject"], where)
        return where

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.implicit_tls:
            return smtplib.SMTP_SSL(
                s.host, s.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(s.host, s.port, timeout=self.timeout)


class DirectoryTransport:
    """Development: every message becomes `<MAIL_DIR>/<time>-<name>.eml`, announced in the
    log, so the README walk-through reads its links without a mail server."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def send(self, message: EmailMessage, *, name: str) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{utcnow():%Y%m%dT%H%M%S%fZ}-{name}.eml"
            partial = path.with_suffix(".part")
            partial.write_bytes(message.as_bytes())
            os.replace(partial, path)  # whoever watches the folder never reads half a message
        except OSError as exc:
            raise TemporaryFailure(f"cannot write to {self.directory}: {exc}") from exc
        log.info("mail to %s: %s -> %s", message["To"], message["Subject"], path)
        return str(path)


def current_transport() -> Transport:
    config = current_app.config
    if config.get("SMTP_URL"):
        return SmtpTransport(SmtpSettings.parse(config["SMTP_URL"]), config["SMTP_TIMEOUT_SECONDS"])
    return DirectoryTransport(config["MAIL_DIR"])


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
