"""Periodic housekeeping, called by workers.jobs.maintenance."""

from __future__ import annotations

from sqlalchemy import delete

from app import tenancy
from app.extensions import db
from app.models import IdempotencyRecord, PasswordReset, RefreshToken, SignupRequest
from app.models.base import utcnow
from app.services import outbox, throttle


def purge_expired() -> dict[str, int]:
    purged = {"idempotency_records": _purge_idempotency_records()}
    with tenancy.system_scope():
        result = db.session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= utcnow()))
        db.session.commit()
    purged["refresh_tokens"] = result.rowcount or 0
    from app.services import accounts

    purged["oauth_states"] = accounts.purge_expired_states()
    purged["login_throttles"] = throttle.purge_stale()
    now = utcnow()
    for name, model in (("signup_requests", SignupRequest), ("password_resets", PasswordReset)):
        result = db.session.execute(delete(model).where(model.expires_at <= now))
        purged[name] = result.rowcount or 0
    db.session.commit()
    purged["outbound_emails"] = outbox.purge_old()
    return purged


def _purge_idempotency_records() -> int:
    """Forget the kept responses past their 24 h (app/api/idempotency.py keeps them)."""
    with tenancy.system_scope():
        result = db.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
        )
        db.session.commit()
    return result.rowcount or 0
