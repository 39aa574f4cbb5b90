"""Telling people about security events on their account.

One function per event, each the single place the event is reported: the person gets an e-mail
through the outbox, and every agency they belong to gets an audit event (its owners and admins
read it in the trail).
"""

from __future__ import annotations

from datetime import timedelta

from app import tenancy
from app.extensions import db
from app.models import User
from app.models.base import utcnow
from app.services import audit, outbox


def failed_sign_in_burst(user: User, count: int, window: timedelta, *, actor: audit.Actor) -> None:
    """`count` wrong passwords were tried on `user`'s account, from any addresses, within
    `window`. Called once per window by app/services/throttle.py, with the request that tipped
    the count as `actor` (recorded as the system). Commits."""
    from app.services import identity

    data = {"failures": count, "window_seconds": int(window.total_seconds())}
    with tenancy.system_scope():  # as the password reset sends its notice: no tenant yet
        outbox.send_security_notice(
            user, "sign_in_failures", failures=count, since=outbox.when(utcnow() - window)
        )
        db.session.commit()
    for agency_id in identity.agencies_of(user.id):
        # The trail of each agency is its own tenant: written past RLS, one agency at a time.
        with tenancy.system_scope():
            audit.record(
                "user.sign_in_failures_burst",
                agency_id=agency_id,
                target_type="user",
                target_id=user.id,
                data=data,
                actor=actor,
            )
            db.session.commit()
