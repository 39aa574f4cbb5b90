"""Test support for mail: a real SMTP server, the mail queue's jobs, and the mail directory.

- `SmtpServer`: aiosmtpd on 127.0.0.1 (a free port), keeping what it receives; it can refuse
  the next messages with a given reply, to test retries.
- `run_mail_jobs(app)`: what a worker does, in process: a burst of RQ's SimpleWorker over the
  `mail` queue (JSON serializer, like `rq worker --serializer json`).
- `read_mail(app, to)`: the messages written to MAIL_DIR for an address, oldest first (the
  suite's app has no SMTP_URL, so that is where mail goes, as under `make run`).
- `token_in(message, path)`: the `token` of the link to `path` in the message's text.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from flask import Flask
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app import queue


class _Controller(Controller):
    """aiosmtpd's Controller with `port=0`: its start-up check connects to `self.port`, so
    read the port the system gave before it does."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    def __init__(self, **smtp_parameters: Any) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.refusals: list[str] = []  # replies for the next DATA commands, then "250 OK"
        self.controller = _Controller(self, hostname="127.0.0.1", port=0, **smtp_parameters)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        self.envelopes.append(envelope)
        self.received.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}?starttls=false"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()


class _BurstWorker(SimpleWorker):
    """SimpleWorker without its command channel (a pub/sub thread for `rq` stop and kill
    commands, whose join takes up to a second per burst); nobody sends those in a test."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files (for a STARTTLS server)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def run_mail_jobs(app: Flask) -> None:
    with app.app_context():
        mail_queue = queue.queue(queue.MAIL)
        worker = _BurstWorker(
            [mail_queue], connection=mail_queue.connection, serializer=JSONSerializer
        )
        worker.work(burst=True)


def read_mail(app: Flask, to: str | None = None, *, run_jobs: bool = True) -> list[EmailMessage]:
    if run_jobs:
        run_mail_jobs(app)
    found = []
    for path in sorted(Path(app.config["MAIL_DIR"]).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to is None or message["To"] == to:
            found.append(message)
    return found


def last_mail(app: Flask, to: str) -> EmailMessage:
    messages = read_mail(app, to)
    assert messages, f"no mail to {to}"
    return messages[-1]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def links_in(message: EmailMessage) -> list[str]:
    return re.findall(r"https?://[^\s<>\"]+", text_of(message))


def token_in(message: EmailMessage, path: str) -> str:
    for url in links_in(message):
        parts = urlsplit(url)
        if parts.path.endswith(path) and "token" in parse_qs(parts.query):
            return parse_qs(parts.query)["token"][0]
    raise AssertionError(f"no link to {path} with a token in:\n{text_of(message)}")
