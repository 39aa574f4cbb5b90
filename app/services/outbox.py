"""The outbox: mail recorded with the change that calls for it, sent by a worker.

- `send(template, to=…, context=…)` adds the message to the caller's transaction. Once that
  transaction commits, the message is enqueued (`workers.jobs.mail.send_email`, on the `mail`
  queue); if it rolls back, nothing is sent. A message therefore never announces a change that
  did not happen, and a change never loses its message to a crash between the two.
- `deliver(id)`, the job: claims the message, renders it, hands it to the transport
  (app/mail/transport.py), and records the outcome. A temporary failure raises, and RQ tries
  again after each of MAIL_RETRY_INTERVALS; a permanent one, or the last try, marks it failed.
  The template's context (which often holds the secret of a link) is encrypted at rest with
  the credentials keys and erased once the message is sent.
- `enqueue_stalled()`, periodic: the database is the source of truth, so a message that Redis
  lost (or that could not be enqueued at commit) is enqueued again when overdue.
- `link(path, token=…)`: the address a mail points to, on the front end (FRONTEND_BASE_URL), or
  on Relais's own pages (app/pages) when there is none.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from rq import Retry, get_current_job
from sqlalchemy import and_, delete, event, or_, select, update
from sqlalchemy.orm import Session

from app import queue
from app.extensions import db
from app.mail.render import build_message, render
from app.mail.transport import PermanentFailure, TemporaryFailure, current_transport
from app.models import OutboundEmail, OutboundEmailStatus, User
from app.models.base import utcnow
from app.security import crypto

log = logging.getLogger("relais.mail")

SEND_JOB = "workers.jobs.mail.send_email"
DEVELOPMENT_SENDER = "Relais <relais@localhost>"
# A message claimed this long ago and still not sent belongs to a worker that died.
CLAIM_TIMEOUT = timedelta(minutes=15)
# How late a pending message may be before the sweep enqueues it again (RQ's own retries come
# first; this is for what Redis lost).
STALL_GRACE = timedelta(minutes=10)
# Sent and failed messages are kept this long (for support questions), then forgotten.
KEEP_FOR = timedelta(days=30)

_PENDING = "relais_outbox_pending"


def send(template: str, *, to: str, context: dict[str, Any]) -> OutboundEmail:
    """Record a message; it is enqueued once the caller's transaction commits.

    `context` must be JSON (strings, numbers, lists, dicts): it is stored encrypted until the
    message is sent. The template is rendered now as well, so a missing value fails the
    caller's request rather than a worker later.
    """
    render(template, context)
    now = utcnow()
    email = OutboundEmail(
        to_address=to,
        template=template,
        context_encrypted=crypto.encrypt(context),
        status=OutboundEmailStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session = db.session()
    session.add(email)
    session.flush()
    session.info.setdefault(_PENDING, []).append(email.id)
    return email


def send_security_notice(user: User, template: str, **context: Any) -> OutboundEmail:
    """A notice to a user about their own account, e.g.
    `send_security_notice(user, "sign_in_failures", failures=8, since="…")`; the template gets
    the user's `name` and a `reset_url` besides. Recorded in the caller's transaction."""
    return send(
        template,
        to=user.email,
        context={"name": user.name, "reset_url": link("/reset-password"), **context},
    )


def link(path: str, **query: str) -> str:
    config = current_app.config
    base = (config["FRONTEND_BASE_URL"] or config["API_BASE_URL"]).rstrip("/")
    return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")


def when(instant: datetime) -> str:
    """An instant as mail shows it (UTC: the reader's time zone is not known)."""
    return f"{instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def sender() -> str:
    return current_app.config.get("MAIL_FROM") or DEVELOPMENT_SENDER


# -- after commit --------------------------------------------------------------------------------


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    for outbound_id in session.info.pop(_PENDING, []):
        enqueue(outbound_id)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def enqueue(outbound_id: str) -> None:
    intervals = current_app.config["MAIL_RETRY_INTERVALS"]
    try:
        queue.enqueue(
            SEND_JOB,
            outbound_id,
            queue_name=queue.MAIL,
            job_id=f"mail-{outbound_id}",
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        )
    except Exception:  # noqa: BLE001 - the message is safe in the database; the sweep resends
        log.warning("could not enqueue mail %s; it will be retried", outbound_id, exc_info=True)


# -- the job -----------------------------------------------------------------------------------


def deliver(outbound_id: str) -> str:
    """Send one message; returns what happened (`sent`, `failed`, `skipped`)."""
    now = utcnow()
    claimed = db.session.execute(
        update(OutboundEmail)
        .where(
            OutboundEmail.id == outbound_id,
            or_(
                OutboundEmail.status == OutboundEmailStatus.PENDING,
                and_(
                    OutboundEmail.status == OutboundEmailStatus.SENDING,
                    OutboundEmail.claimed_at < now - CLAIM_TIMEOUT,
                ),
            ),
        )
        .values(
            status=OutboundEmailStatus.SENDING,
            claimed_at=now,
            attempts=OutboundEmail.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if claimed.rowcount != 1:
        return "skipped"  # sent already, failed for good, being sent, or gone
    email = db.session.get(OutboundEmail, outbound_id, populate_existing=True)
    assert email is not None
    try:
        context = crypto.decrypt(email.context_encrypted or b"")
        rendered = render(email.template, context)
        message = build_message(rendered, to=email.to_address, sender=sender(), message_id=email.id)
        current_transport().send(message, name=email.id)  # logs one line: to, subject, where
    except PermanentFailure as exc:
        _finish(email, OutboundEmailStatus.FAILED, str(exc))
        log.error("mail %s to %s refused for good: %s", email.id, email.to_address, exc)
        return "failed"
    except (TemporaryFailure, crypto.CredentialsUnreadable) as exc:
        # CredentialsUnreadable: this worker lacks the key the web process encrypted with, an
        # operator error worth retrying once the configuration is fixed.
        _retry_later(email, exc)
        raise
    except Exception as exc:  # a template or a bug: trying again will not help
        _finish(email, OutboundEmailStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    _finish(email, OutboundEmailStatus.SENT, None)
    return "sent"


def _finish(email: OutboundEmail, status: str, error: str | None) -> None:
    email.status = status
    email.last_error = error[:2000] if error else None
    email.claimed_at = None
    if status == OutboundEmailStatus.SENT:
        email.sent_at = utcnow()
        email.context_encrypted = None  # the link's secret is not kept past its use
    db.session.commit()


def _retry_later(email: OutboundEmail, exc: Exception) -> None:
    intervals = current_app.config["MAIL_RETRY_INTERVALS"]
    job = get_current_job()
    # The last try: no retry left in RQ, or as many tries as the configuration allows.
    last = (job is not None and not job.retries_left) or email.attempts > len(intervals)
    if last:
        _finish(email, OutboundEmailStatus.FAILED, str(exc))
        log.error(
            "mail %s to %s failed after %d attempts: %s",
            email.id,
            email.to_address,
            email.attempts,
            exc,
        )
        return
    wait = intervals[min(email.attempts - 1, len(intervals) - 1)]
    email.status = OutboundEmailStatus.PENDING
    email.claimed_at = None
    email.last_error = str(exc)[:2000]
    email.next_attempt_at = utcnow() + timedelta(seconds=wait)
    db.session.commit()
    log.warning(
        "mail %s to %s: attempt %d failed (%s); next in %ds",
        email.id,
        email.to_address,
        email.attempts,
        exc,
        wait,
    )


# -- housekeeping --------------------------------------------------------------------------------


def enqueue_stalled() -> int:
    """Enqueue again what is overdue: pending past its time (plus a grace), or claimed by a
    worker that never finished. Returns how many."""
    now = utcnow()
    ids = db.session.scalars(
        select(OutboundEmail.id)
        .where(
            or_(
                and_(
                    OutboundEmail.status == OutboundEmailStatus.PENDING,
                    OutboundEmail.next_attempt_at < now - STALL_GRACE,
                ),
                and_(
                    OutboundEmail.status == OutboundEmailStatus.SENDING,
                    OutboundEmail.claimed_at < now - CLAIM_TIMEOUT,
                ),
            )
        )
        .order_by(OutboundEmail.next_attempt_at)
        .limit(1000)
    ).all()
    db.session.rollback()
    for outbound_id in ids:
        enqueue(outbound_id)
    return len(ids)


def purge_old() -> int:
    result = db.session.execute(
        delete(OutboundEmail).where(
            OutboundEmail.status.in_([OutboundEmailStatus.SENT, OutboundEmailStatus.FAILED]),
            OutboundEmail.created_at < utcnow() - KEEP_FOR,
        )
    )
    db.session.commit()
    return result.rowcount or 0
