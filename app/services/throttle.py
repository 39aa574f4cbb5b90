"""Slows down password guessing without handing anyone a way to lock the owner out.

Every endpoint that checks a password (sign-in, accepting an invitation as an existing account,
changing one's password) goes through `begin_attempt` before the check, then `record_success`
or `record_failure` after it. Three kinds of counters, rows of `login_throttles`:

- `src:<address>|<e-mail>`, one per account and source address. The first
  `LOGIN_FAILURES_BEFORE_DELAY` failures are free; each further one makes that source wait
  before its next try, `LOGIN_DELAY_SECONDS` doubling up to `LOGIN_MAX_DELAY_SECONDS` (429 with
  Retry-After). A success from that source clears it; a streak is forgotten
  `LOGIN_FAILURE_MEMORY_SECONDS` after it started. Another source is never slowed by it, so the
  owner with the right password elsewhere signs in at once: there is no account-wide lock for a
  stranger to hold.
- `ip:<address>`, the ceiling of one address across accounts: after `LOGIN_MAX_FAILURES_PER_IP`
  failures within `LOGIN_IP_WINDOW_SECONDS`, the address waits for the window.
- `acct:<e-mail>`, failures on the account from any source within `LOGIN_BURST_WINDOW_SECONDS`.
  It never refuses anything; when it reaches `LOGIN_BURST_FAILURES`, once per window,
  `security_notices.failed_sign_in_burst` tells the owner.

An attempt is counted as a failure *before* the password is checked and taken back when it
proves right: concurrent guesses from one source then queue on the counter's row and cannot all
slip through before the first failure is written. Unknown e-mails are counted like known ones,
so nothing here tells which addresses are registered. An IPv6 source counts as its /64, the
block one subscriber usually holds.

Counters live in the database, so every process sees the same; `purge_stale` (housekeeping)
forgets the rows whose window is over and that hold no wait, which bounds the table.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.errors import TooManyRequests
from app.extensions import db
from app.models import LoginThrottle, User
from app.models.base import utcnow
from app.services.audit import Actor

SOURCE, ADDRESS, ACCOUNT = "src:", "ip:", "acct:"


def source_of(ip: str | None) -> str:
    """The address a counter is kept for: IPv4 as is, IPv6 as its /64 network."""
    if not ip:
        return "-"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def delay_after(failures: int) -> int:
    """Seconds a source waits after its `failures`-th consecutive failure on one account."""
    cfg = current_app.config
    extra = failures - cfg["LOGIN_FAILURES_BEFORE_DELAY"]
    if extra <= 0:
        return 0
    # Capped before the power, so a long streak cannot overflow anything.
    step = min(extra - 1, 32)
    return min(cfg["LOGIN_DELAY_SECONDS"] * 2**step, cfg["LOGIN_MAX_DELAY_SECONDS"])


def _windows() -> dict[str, timedelta]:
    cfg = current_app.config
    return {
        SOURCE: timedelta(seconds=cfg["LOGIN_FAILURE_MEMORY_SECONDS"]),
        ADDRESS: timedelta(seconds=cfg["LOGIN_IP_WINDOW_SECONDS"]),
        ACCOUNT: timedelta(seconds=cfg["LOGIN_BURST_WINDOW_SECONDS"]),
    }


def _source_key(email: str, ip: str | None) -> str:
    return f"{SOURCE}{source_of(ip)}|{email}"


def begin_attempt(email: str, ip: str | None) -> None:
    """Count a password attempt for `email` from `ip`, or refuse it (429) while that source
    must wait. Commits, so the attempt counts even if the request dies during the check."""
    now = utcnow()
    windows = _windows()
    source = source_of(ip)
    try:
        pair_failures = _take(_source_key(email, ip), windows[SOURCE], now)
        ip_failures = _take(f"{ADDRESS}{source}", windows[ADDRESS], now) if ip else 0
    except _Waiting as waiting:
        db.session.rollback()
        if waiting.key.startswith(ADDRESS):
            detail = "Too many failed sign-ins from your network address"
        else:
            detail = "Too many failed sign-ins for this account from your address"
        raise TooManyRequests(
            f"{detail}; try again in {waiting.seconds} seconds.", retry_after=waiting.seconds
        ) from None
    delay = delay_after(pair_failures)
    if delay:
        _hold(_source_key(email, ip), now + timedelta(seconds=delay))
    if ip and ip_failures >= current_app.config["LOGIN_MAX_FAILURES_PER_IP"]:
        _hold(f"{ADDRESS}{source}", now + windows[ADDRESS])
    db.session.commit()


def record_success(email: str, ip: str | None) -> None:
    """The password was right: forget this source's streak and take back the attempt counted
    against the address (the address counter only ever holds failures)."""
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == _source_key(email, ip)))
    if ip:
        db.session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == f"{ADDRESS}{source_of(ip)}", LoginThrottle.failures > 0)
            .values(failures=LoginThrottle.failures - 1)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def record_failure(email: str, user: User | None, *, actor: Actor) -> None:
    """The password was wrong (the attempt is already counted against its source): count it on
    the account, and tell the owner once per window when failures pile up from anywhere.
    `actor`: the request that failed, named in the audit trail when it tips the count."""
    window = _windows()[ACCOUNT]
    failures = _take(f"{ACCOUNT}{email}", window, utcnow())
    db.session.commit()
    if user is not None and failures == current_app.config["LOGIN_BURST_FAILURES"]:
        from app.services import security_notices

        security_notices.failed_sign_in_burst(user, failures, window, actor=actor.as_system())


def purge_stale() -> int:
    """Forget counters whose window is over and that hold no wait: every e-mail ever tried
    leaves rows, so without this the table grows with each guessing campaign."""
    now = utcnow()
    removed = 0
    for prefix, window in _windows().items():
        result = db.session.execute(
            delete(LoginThrottle).where(
                LoginThrottle.key.startswith(prefix, autoescape=True),
                LoginThrottle.window_started_at <= now - window,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
            )
        )
        removed += result.rowcount or 0
    db.session.commit()
    return removed


class _Waiting(Exception):
    def __init__(self, key: str, seconds: int) -> None:
        self.key, self.seconds = key, seconds


def _take(key: str, window: timedelta, now: datetime) -> int:
    """Add one failure to `key` and return its count in the current window, in one statement,
    so concurrent requests each get their own number. Raises _Waiting while the key holds a
    wait. A window that is over starts again at one."""
    free = or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now)
    over = and_(LoginThrottle.window_started_at <= now - window, free)
    bump = (
        update(LoginThrottle)
        .where(LoginThrottle.key == key, free)
        .values(
            failures=case((over, 1), else_=LoginThrottle.failures + 1),
            window_started_at=case((over, now), else_=LoginThrottle.window_started_at),
            locked_until=None,
        )
        .returning(LoginThrottle.failures)
        .execution_options(synchronize_session=False)
    )
    for _ in range(2):
        failures = db.session.execute(bump).scalar()
        if failures is not None:
            return failures
        locked_until = db.session.scalar(
            select(LoginThrottle.locked_until).where(LoginThrottle.key == key)
        )
        if locked_until is not None:
            raise _Waiting(key, max(1, math.ceil((locked_until - now).total_seconds())))
        if _insert_first(key, now):
            return 1
        # Created by a concurrent request since: count on its row.
    raise RuntimeError(f"login counter {key!r} could not be taken")


def _insert_first(key: str, now: datetime) -> bool:
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(LoginThrottle)
        .values(key=key, failures=1, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=[LoginThrottle.key])
        # RETURNING, not rowcount: the driver's rowcount of an upsert is not to be trusted.
        .returning(LoginThrottle.key)
    )
    return db.session.execute(stmt).scalar() is not None


def _hold(key: str, until: datetime) -> None:
    db.session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(locked_until=until)
        .execution_options(synchronize_session=False)
    )
