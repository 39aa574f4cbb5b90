"""Telling people about security events on their account.

One function per event, each the single place the event is reported: today each writes an audit
event in every agency the person belongs to (their owners and admins read it in the trail); the
e-mail to the person is to be sent from here as well, once the outbox exists.
"""

from __future__ import annotations

from datetime import timedelta

from app import tenancy
from app.extensions import db
from app.models import User
from app.services import audit


def failed_sign_in_burst(user: User, count: int, window: timedelta) -> None:
    """`count` wrong passwords were tried on `user`'s account, from any addresses, within
    `window`. Called once per window by app/services/throttle.py. Commits."""
    from app.services import identity

    data = {"failures": count, "window_seconds": int(window.total_seconds())}
    for agency_id in identity.agencies_of(user.id):
        # The trail of each agency is its own tenant: written past RLS, one agency at a time.
        with tenancy.system_scope():
            audit.record(
                "user.sign_in_failures_burst",
                agency_id=agency_id,
                target_type="user",
                target_id=user.id,
                data=data,
                actor_type="system",
                actor_id=None,
            )
            db.session.commit()
