"""Periodic housekeeping, called by workers.jobs.maintenance: forgetting records past their use
(idempotency records, spent refresh tokens, finished OAuth authorizations, stale login
throttles, expired sign-ups and password resets, old mail)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_

from app import tenancy
from app.extensions import db
from app.models import IdempotencyRecord, OAuthState, PasswordReset, RefreshToken, SignupRequest
from app.models.base import utcnow
from app.services import outbox, throttle


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def purge_expired() -> dict[str, int]:
    purged = {"idempotency_records": _purge_idempotency_records()}
    with tenancy.system_scope():
        result = db.session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= utcnow()))
        db.session.commit()
    purged["refresh_tokens"] = result.rowcount or 0
    purged["oauth_states"] = purge_expired_oauth_states()
    purged["login_throttles"] = throttle.purge_stale()
    now = utcnow()
    for name, model in (("signup_requests", SignupRequest), ("password_resets", PasswordReset)):
        result = db.session.execute(delete(model).where(model.expires_at <= now))
        purged[name] = result.rowcount or 0
    db.session.commit()
    purged["outbound_emails"] = outbox.purge_old()
    return purged


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def purge_expired_oauth_states(*, now: datetime | None = None) -> int:
    """Forget authorizations that can no longer be finished (expired or used a day ago)."""
    cutoff = (now or utcnow()) - timedelta(days=1)
    with tenancy.system_scope():
        result = db.session.execute(
            delete(OAuthState).where(
                or_(OAuthState.expires_at <= cutoff, OAuthState.used_at <= cutoff)
            )
        )
        db.session.commit()
    return result.rowcount or 0


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def _purge_idempotency_records() -> int:
    """Forget the kept responses past their 24 h (app/api/idempotency.py keeps them)."""
    with tenancy.system_scope():
        result = db.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
        )
        db.session.commit()
    return result.rowcount or 0
