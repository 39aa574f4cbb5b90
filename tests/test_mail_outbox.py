"""The outbox end to end: recorded in a transaction, enqueued after commit, sent by an RQ
worker through a real SMTP server (aiosmtpd), retried with backoff on a temporary refusal."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from app import create_app, queue
from app.extensions import db
from app.mail.transport import SmtpSettings
from app.models import OutboundEmail, SignupRequest, User
from app.models.base import utcnow
from app.services import outbox
from tests.helpers import owner_connection
from tests.mail import (
    SmtpServer,
    html_of,
    read_mail,
    run_mail_jobs,
    self_signed_certificate,
    text_of,
)

RESET_CONTEXT = {
    "name": "Ada",
    "reset_url": "http://front.example/reset-password?token=pwr_secret-in-the-link",
    "expires_at": "2026-12-01 10:00 UTC",
}


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp_app(app_config: dict[str, Any], smtp: SmtpServer):
    """The suite's app, but sending through the local SMTP server."""
    return create_app(
        {
            **app_config,
            "SMTP_URL": smtp.url,
            "MAIL_FROM": "Relais <relais@agency.example>",
            "MAIL_RETRY_INTERVALS": [30, 60],
        }
    )


def _record(app, to: str = "ada@example.com", context: dict | None = None) -> str:
    with app.app_context():
        email = outbox.send("password_reset", to=to, context=context or RESET_CONTEXT)
        db.session.commit()
        return email.id


def _row(app, outbound_id: str) -> OutboundEmail:
    with app.app_context():
        return db.session.get(OutboundEmail, outbound_id)


def test_a_message_goes_through_rq_and_smtp_with_both_parts(smtp_app, smtp, database):
    outbound_id = _record(smtp_app)
    run_mail_jobs(smtp_app)

    assert len(smtp.received) == 1
    message = smtp.received[0]
    assert message["To"] == "ada@example.com"
    assert message["From"] == "Relais <relais@agency.example>"
    assert message["Subject"] == "Reset your Relais password"
    assert message["Message-ID"] == f"<{outbound_id}@agency.example>"
    assert message["Date"]
    assert smtp.envelopes[0].mail_from == "relais@agency.example"
    assert smtp.envelopes[0].rcpt_tos == ["ada@example.com"]
    assert message.get_content_type() == "multipart/alternative"
    assert "Hello Ada" in text_of(message)
    assert RESET_CONTEXT["reset_url"] in text_of(message)
    assert f'href="{RESET_CONTEXT["reset_url"]}"' in html_of(message)
    # No external asset: the only addresses in the HTML are the links themselves.
    assert "<img" not in html_of(message) and "<link" not in html_of(message)

    row = _row(smtp_app, outbound_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    # The link's secret is erased once sent, and was never stored in clear.
    assert row.context_encrypted is None
    with owner_connection(database) as connection:
        stored = connection.execute(select(OutboundEmail.__table__)).all()
    assert "pwr_secret-in-the-link" not in repr(stored)

    run_mail_jobs(smtp_app)  # nothing left to do
    with smtp_app.app_context():
        assert outbox.deliver(outbound_id) == "skipped"
    assert len(smtp.received) == 1


def test_html_is_escaped_and_the_subject_stays_one_line(smtp_app, smtp):
    _record(
        smtp_app,
        context={**RESET_CONTEXT, "name": "<b>Eve</b>\r\nBcc: victim@example.com"},
    )
    run_mail_jobs(smtp_app)
    message = smtp.received[0]
    assert "<b>Eve</b>" not in html_of(message)
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html_of(message)
    assert message["Bcc"] is None
    assert smtp.envelopes[0].rcpt_tos == ["ada@example.com"]


def test_a_temporary_refusal_is_retried_after_a_backoff_and_delivered_once(smtp_app, smtp):
    smtp.refusals = ["451 4.3.0 Try again later"]
    outbound_id = _record(smtp_app)
    run_mail_jobs(smtp_app)
    assert smtp.received == []

    row = _row(smtp_app, outbound_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in row.last_error
    with smtp_app.app_context():
        mail_queue = queue.queue(queue.MAIL)
        registry = ScheduledJobRegistry(queue=mail_queue)
        job_id = f"mail-{outbound_id}"
        # Not retried at once: scheduled after the first interval (30 s).
        assert job_id in registry.get_job_ids()
        wait = registry.get_scheduled_time(job_id) - utcnow()
        assert timedelta(seconds=20) < wait <= timedelta(seconds=31)
        # Time passes: what `rq worker --with-scheduler` does when the retry is due.
        registry.remove(job_id)
        mail_queue.enqueue_job(
            Job.fetch(job_id, connection=mail_queue.connection, serializer=mail_queue.serializer)
        )
    run_mail_jobs(smtp_app)

    assert len(smtp.received) == 1
    row = _row(smtp_app, outbound_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    run_mail_jobs(smtp_app)
    assert len(smtp.received) == 1


def test_retries_run_out_and_the_message_is_marked_failed(app_config, smtp):
    app = create_app({**app_config, "SMTP_URL": smtp.url, "MAIL_RETRY_INTERVALS": [0]})
    smtp.refusals = ["421 4.7.0 Busy", "452 4.2.2 Mailbox full"]
    outbound_id = _record(app)
    run_mail_jobs(app)  # the retry interval is 0: both tries happen in this burst
    assert smtp.received == []
    row = _row(app, outbound_id)
    assert (row.status, row.attempts) == ("failed", 2)
    assert "452" in row.last_error


def test_a_permanent_refusal_is_not_retried(smtp_app, smtp):
    smtp.refusals = ["550 5.1.1 No such mailbox"]
    outbound_id = _record(smtp_app)
    run_mail_jobs(smtp_app)
    row = _row(smtp_app, outbound_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error
    with smtp_app.app_context():
        registry = ScheduledJobRegistry(queue=queue.queue(queue.MAIL))
        assert f"mail-{outbound_id}" not in registry.get_job_ids()
    run_mail_jobs(smtp_app)
    assert smtp.received == []


def test_a_mail_server_that_does_not_answer_is_a_temporary_failure(app_config):
    with SmtpServer() as server:
        url = server.url  # a port that was free a moment ago, closed now
    app = create_app({**app_config, "SMTP_URL": url, "MAIL_RETRY_INTERVALS": [60]})
    outbound_id = _record(app)
    run_mail_jobs(app)
    row = _row(app, outbound_id)
    assert row.status == "pending" and "ConnectionRefusedError" in row.last_error


def test_nothing_is_sent_when_the_transaction_rolls_back(app):
    with app.app_context():
        outbox.send("password_reset", to="ada@example.com", context=RESET_CONTEXT)
        db.session.rollback()
        db.session.commit()  # a later commit must not send the forgotten message
        assert db.session.scalar(select(OutboundEmail.id)) is None
    assert read_mail(app) == []


def test_without_smtp_url_mail_is_written_to_the_mail_directory_and_announced(app, caplog):
    with caplog.at_level(logging.INFO, logger="relais.mail"):
        _record(app, to="dev@example.com")
        [message] = read_mail(app, "dev@example.com")
    assert message["Subject"] == "Reset your Relais password"
    assert RESET_CONTEXT["reset_url"] in text_of(message)
    announced = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert len(announced) == 1
    assert "dev@example.com" in announced[0] and "Reset your Relais password" in announced[0]
    assert announced[0].endswith(".eml") and app.config["MAIL_DIR"] in announced[0]


def test_the_sweep_enqueues_again_what_redis_lost(app):
    outbound_id = _record(app)
    with app.app_context():
        queue.queue(queue.MAIL).empty()  # Redis lost the job
        assert outbox.enqueue_stalled() == 0  # not overdue yet
        db.session.execute(
            update(OutboundEmail).values(next_attempt_at=utcnow() - timedelta(minutes=11))
        )
        db.session.commit()
        assert outbox.enqueue_stalled() == 1
    assert len(read_mail(app, "ada@example.com")) == 1
    assert _row(app, outbound_id).status == "sent"


def test_an_unknown_template_or_a_missing_value_fails_the_caller_at_once(app):
    with app.app_context():
        with pytest.raises(ValueError):
            outbox.send("no_such_template", to="a@example.com", context={})
        with pytest.raises(Exception, match="undefined"):
            outbox.send("password_reset", to="a@example.com", context={"name": "x"})
        db.session.rollback()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 587, False, True, None, None)),
        ("smtp://127.0.0.1:2525?starttls=false", ("127.0.0.1", 2525, False, False, None, None)),
        (
            "smtps://me%40example.com:p%3Ass@mail.example.com",
            ("mail.example.com", 465, True, False, "me@example.com", "p:ss"),
        ),
    ],
)
def test_smtp_url_forms(url, expected):
    s = SmtpSettings.parse(url)
    assert (s.host, s.port, s.implicit_tls, s.starttls, s.username, s.password) == expected


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "smtp://h?tls=yes", "smtp://h:port"]
)
def test_a_bad_smtp_url_stops_the_start(app_config, url):
    with pytest.raises(RuntimeError, match="SMTP_URL"):
        create_app({**app_config, "SMTP_URL": url})


@pytest.mark.parametrize("missing", ["SMTP_URL", "MAIL_FROM"])
def test_production_refuses_to_start_without_a_mail_server(app_config, missing):
    settings = {
        **app_config,
        "ENV": "production",
        "TESTING": False,
        "SECRET_KEY": "k" * 48,
        "SMTP_URL": "smtp://mail.example.com",
        "MAIL_FROM": "Relais <relais@example.com>",
        missing: "",
    }
    with pytest.raises(RuntimeError, match=missing):
        create_app(settings)


def test_a_security_notice_is_one_call(app, make_agency):
    owner = make_agency(brands=0)
    with app.app_context():
        user = db.session.get(User, owner.user_id)
        outbox.send_security_notice(user, "sign_in_failures", failures=8, since="09:00 UTC")
        db.session.commit()
    message = read_mail(app, owner.email)[-1]
    assert message["Subject"] == "Failed sign-ins to your Relais account"
    assert "8 failed attempts" in text_of(message) and "/reset-password" in text_of(message)


def test_rotate_keys_re_encrypts_messages_not_sent_yet(app_config):
    from cryptography.fernet import Fernet

    old_key = app_config["CREDENTIALS_ENCRYPTION_KEYS"][0]
    new_key = Fernet.generate_key().decode()
    outbound_id = _record(create_app(app_config), to="later@example.com")
    rotating = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [new_key, old_key]})
    result = rotating.test_cli_runner().invoke(args=["accounts", "rotate-keys"])
    assert "outbound_emails: 1" in result.output, result.output
    # Only the new key left: the message still goes.
    rotated = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [new_key]})
    with rotated.app_context():
        assert outbox.deliver(outbound_id) == "sent"
    assert len(read_mail(rotated, "later@example.com", run_jobs=False)) == 1


def test_housekeeping_forgets_spent_links_and_old_mail(app, client, database):
    from app.services import maintenance

    client.post(
        "/v1/signup",
        json={"agency_name": "A", "name": "N", "email": "old@example.com", "password": "x" * 12},
    )
    read_mail(app, "old@example.com")  # sent
    with app.app_context():
        assert maintenance.purge_expired()["signup_requests"] == 0
    with owner_connection(database) as connection:
        connection.execute(update(SignupRequest).values(expires_at=utcnow() - timedelta(days=1)))
        connection.execute(update(OutboundEmail).values(created_at=utcnow() - timedelta(days=31)))
    with app.app_context():
        purged = maintenance.purge_expired()
    assert (purged["signup_requests"], purged["outbound_emails"]) == (1, 1)


def test_starttls_and_login_as_production_sends(app_config, tmp_path, monkeypatch):
    """smtp:// with a user: STARTTLS first (the certificate is checked), then AUTH, then the
    message. The server refuses AUTH without TLS, and trusts only our test certificate."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert, key = self_signed_certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss:word")

    with SmtpServer(
        tls_context=tls, require_starttls=True, authenticator=authenticator, auth_required=True
    ) as server:
        port = server.controller.port
        url = f"smtp://relais%40agency.example:p%40ss%3Aword@127.0.0.1:{port}"
        app = create_app({**app_config, "SMTP_URL": url, "MAIL_RETRY_INTERVALS": [60]})
        # A certificate the system does not trust is a temporary failure, nothing is sent.
        untrusted = _record(app, to="tls@example.com")
        run_mail_jobs(app)
        row = _row(app, untrusted)
        assert row.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in row.last_error
        # Trusted (as an operator's CA bundle would be): delivered over TLS, after login.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = _record(app, to="tls@example.com")
        run_mail_jobs(app)
        assert _row(app, trusted).status == "sent"
        assert logins == [(b"relais@agency.example", b"p@ss:word")]
        assert [m["To"] for m in server.received] == ["tls@example.com"]
