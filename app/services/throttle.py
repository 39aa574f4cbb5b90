"""Slows down password guessing: per account and per client IP.

After `LOGIN_MAX_FAILURES_PER_ACCOUNT` failures within the lockout window the account refuses
logins (even correct ones) until the window ends; same per IP with its own, higher, threshold.
A success clears the account's counter. Kept in the database so every process sees the same.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select

from app.errors import TooManyRequests
from app.extensions import db
from app.models import LoginThrottle
from app.models.base import utcnow


def _keys(email: str, ip: str | None) -> list[tuple[str, int]]:
    cfg = current_app.config
    keys = [(f"acct:{email}", cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"])]
    if ip:
        keys.append((f"ip:{ip}", cfg["LOGIN_MAX_FAILURES_PER_IP"]))
    return keys


def check_allowed(email: str, ip: str | None) -> None:
    now = utcnow()
    for key, _limit in _keys(email, ip):
        row = db.session.get(LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = int((row.locked_until - now).total_seconds()) + 1
            what = "this account" if key.startswith("acct:") else "your network address"
            raise TooManyRequests(
                f"Too many failed sign-ins for {what}; try again in {wait} seconds.",
                retry_after=wait,
            )


def record_failure(email: str, ip: str | None) -> None:
    now = utcnow()
    window = timedelta(seconds=current_app.config["LOGIN_LOCKOUT_SECONDS"])
    for key, limit in _keys(email, ip):
        row = db.session.scalar(select(LoginThrottle).where(LoginThrottle.key == key))
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_started_at=now)
            db.session.add(row)
        if now - row.window_started_at > window:
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + window
    db.session.commit()


def record_success(email: str) -> None:
    row = db.session.get(LoginThrottle, f"acct:{email}")
    if row is not None:
        db.session.delete(row)


def purge_stale() -> int:
    """Forget counters whose window is over and that lock nothing: every e-mail ever tried
    leaves a row, so without this the table grows with each guessing campaign."""
    now = utcnow()
    window = timedelta(seconds=current_app.config["LOGIN_LOCKOUT_SECONDS"])
    result = db.session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_started_at <= now - window,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        )
    )
    db.session.commit()
    return result.rowcount or 0
