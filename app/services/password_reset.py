"""Forgotten passwords: a single-use link by mail, then a new password.

Asking (`request_reset`) answers the same whatever the address: the web process only enqueues
`workers.jobs.mail.start_password_reset`, and the worker looks the address up (`start`). So
neither the answer nor its timing tells whether an account has that address.

Confirming (`confirm`) sets the new password, spends the link and every other link of that
user, revokes every session of the user (in every agency), and mails a notice, since a reset
is also what someone who took over a mailbox would do.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from app import queue, tenancy
from app.auth.passwords import hash_password
from app.auth.secrets import digest, new_secret
from app.errors import Conflict, NotFound
from app.extensions import db
from app.models import PasswordReset, User
from app.models.base import utcnow
from app.services import identity, outbox

log = logging.getLogger(__name__)

START_JOB = "workers.jobs.mail.start_password_reset"
# At most this many unused links mailed to one account within RECENT.
MAX_RECENT_LINKS = 3
RECENT = timedelta(hours=1)


def request_reset(email: str) -> None:
    """Public: mail a reset link if an account has this address; say nothing either way."""
    queue.enqueue(START_JOB, email, queue_name=queue.MAIL)


def start(email: str) -> bool:
    """In the worker: make a link for the account with this address, if any, and mail it."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        log.info("password reset asked for an address with no account")
        db.session.rollback()
        return False
    recent = db.session.scalar(
        select(func.count())
        .select_from(PasswordReset)
        .where(
            PasswordReset.user_id == user.id,
            PasswordReset.used_at.is_(None),
            PasswordReset.created_at > utcnow() - RECENT,
        )
    )
    if recent >= MAX_RECENT_LINKS:
        # Whoever keeps asking for someone else's address must not flood their mailbox.
        log.info("password reset not mailed: %d links already sent this hour", recent)
        db.session.rollback()
        return False
    token = new_secret("pwr")
    expires_at = utcnow() + timedelta(seconds=current_app.config["PASSWORD_RESET_TTL_SECONDS"])
    db.session.add(PasswordReset(user_id=user.id, token_hash=digest(token), expires_at=expires_at))
    outbox.send(
        "password_reset",
        to=user.email,
        context={
            "name": user.name,
            "reset_url": outbox.link("/reset-password", token=token),
            "expires_at": outbox.when(expires_at),
        },
    )
    db.session.commit()
    return True


def check(token: str) -> PasswordReset:
    """The reset this link is for, if it can still be used; else the problem to show."""
    reset = db.session.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == digest(token))
    )
    if reset is None:
        raise NotFound("This password-reset link is not valid; ask for a new one.")
    if reset.used_at is not None:
        raise Conflict("This password-reset link was already used; ask for a new one.")
    if reset.expires_at <= utcnow():
        raise Conflict("This password-reset link has expired; ask for a new one.")
    return reset


def confirm(token: str, password: str) -> None:
    reset = check(token)
    now = utcnow()
    # Compare-and-set: of two uses of one link at the same moment, one wins.
    spent = db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        db.session.rollback()
        raise Conflict("This password-reset link was already used; ask for a new one.")
    user = db.session.get(User, reset.user_id)
    assert user is not None  # the reset row goes with its user (ON DELETE CASCADE)
    user.password_hash = hash_password(password)
    # Every other link of this user dies with the old password.
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    identity.revoke_sessions(user.id)  # in every agency
    with tenancy.system_scope():
        outbox.send_security_notice(user, "password_changed", changed_at=outbox.when(now))
        db.session.commit()
