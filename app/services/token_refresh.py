"""Keeping social-account tokens fresh: the sweep across agencies, every 15 minutes
(workers.jobs.accounts.refresh_expiring_tokens), and the refresh of one account.

The sweep finds the accounts whose token expires within TOKEN_REFRESH_MARGIN_SECONDS in one
`system_scope` query, then enters each account's agency before touching it. A refresh that
fails for a passing reason keeps the account as it is and tries again on the next run; only a
network saying the credentials are dead marks the account `needs_reconnect`.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app import tenancy
from app.extensions import db
from app.models import AccountHealth, AuditEvent, SocialAccount
from app.models.base import utcnow
from app.networks import connector_for
from app.networks.base import CredentialsRejected, NetworkError, NotSupported, TransientNetworkError
from app.security import crypto
from app.services import account_health, audit
from app.services.accounts import ERROR_TEXT_LIMIT, credentials_of, store_tokens

log = logging.getLogger(__name__)


def refresh_account(account: SocialAccount, *, now: datetime | None = None) -> str:
    """Refresh one account's token; returns the outcome. The caller commits.

    A transient failure (timeout, 429, 5xx) keeps the account's health as it is and records the
    error: the next run tries again. Only a network saying the credentials are dead (401,
    invalid_grant) marks it `needs_reconnect`. Credentials this process cannot decrypt say
    nothing about the account: the account is left untouched (`unreadable`, see below).
    """
    now = now or utcnow()
    connector = connector_for(account.network)
    try:
        secrets = credentials_of(account)
    except CredentialsRejected as exc:
        return _mark_dead(account, str(exc))
    except crypto.CredentialsUnreadable:
        # The operator's error, not the account's: this process lacks the key the row was
        # encrypted with (a worker started without CREDENTIALS_ENCRYPTION_KEYS, or a key dropped
        # before `relais accounts rotate-keys`). Marking it dead would make every agency
        # reconnect everything for nothing.
        _report_unreadable(account, now)
        return "unreadable"
    if not connector.can_refresh(secrets):
        if account.token_expires_at is not None and account.token_expires_at <= now:
            return _mark_dead(account, "the token expired and this network cannot refresh it")
        account.health = AccountHealth.EXPIRING.value
        return "expiring"
    try:
        tokens = connector.refresh(secrets, account.instance_url)
    except TransientNetworkError as exc:
        account.last_error = f"refresh failed, will retry: {exc}"[:ERROR_TEXT_LIMIT]
        return "transient_failure"
    except CredentialsRejected as exc:
        return _mark_dead(account, str(exc))
    except NotSupported:
        account.health = AccountHealth.EXPIRING.value
        return "expiring"
    except NetworkError as exc:
        # Refused for a reason we cannot read as "dead": keep the account, say why.
        account.last_error = f"refresh failed: {exc}"[:ERROR_TEXT_LIMIT]
        return "failed"
    store_tokens(account, tokens)
    account.last_refreshed_at = now
    return "refreshed"


def _report_unreadable(account: SocialAccount, now: datetime) -> None:
    """Loudly, without touching the account: an error log every run, and an audit event at
    most once a day per account (the job runs every 15 minutes until someone fixes the keys)."""
    log.error(
        "social account %s (agency %s): no configured key decrypts its credentials; left as it "
        "is. Check CREDENTIALS_ENCRYPTION_KEYS on this process.",
        account.id,
        account.agency_id,
    )
    recently = db.session.scalar(
        tenancy.scoped_select(AuditEvent, AuditEvent.id)
        .where(
            AuditEvent.action == "social_account.credentials_unreadable",
            AuditEvent.target_id == account.id,
            AuditEvent.created_at > now - timedelta(days=1),
        )
        .limit(1)
    )
    if recently is None:
        audit.record(
            "social_account.credentials_unreadable",
            agency_id=account.agency_id,
            brand_id=account.brand_id,
            target_type="social_account",
            target_id=account.id,
            data={
                "reason": "the server could not decrypt the stored credentials (a server "
                "configuration problem, not the account's); the account was left as it is"
            },
            actor=audit.SYSTEM,
        )


def _mark_dead(account: SocialAccount, reason: str) -> str:
    account_health.mark_needs_reconnect(account, reason)
    return "needs_reconnect"


class UnreadableCredentials(RuntimeError):
    """A run met credentials no configured key decrypts: a configuration error, raised after the
    run so the job fails loudly (the readable accounts' work is committed first)."""

    def __init__(self, account_ids: list[str], outcomes: dict[str, int]) -> None:
        self.account_ids = account_ids
        self.outcomes = outcomes
        shown = ", ".join(account_ids[:10]) + (" …" if len(account_ids) > 10 else "")
        super().__init__(
            f"{len(account_ids)} social account(s) have credentials that no key in "
            f"CREDENTIALS_ENCRYPTION_KEYS decrypts ({shown}); they were left as they are. Give "
            f"this process the keys the API uses. Outcomes: {outcomes}"
        )


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def refresh_expiring_tokens(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Every account whose token expires within TOKEN_REFRESH_MARGIN_SECONDS, across agencies.

    Raises UnreadableCredentials at the end when any account's credentials could not be read.
    """
    now = now or utcnow()
    horizon = now + timedelta(seconds=current_app.config["TOKEN_REFRESH_MARGIN_SECONDS"])
    with tenancy.system_scope():
        due = db.session.execute(
            select(SocialAccount.id, SocialAccount.agency_id)
            .where(
                SocialAccount.health.in_(
                    [AccountHealth.ACTIVE.value, AccountHealth.EXPIRING.value]
                ),
                SocialAccount.credentials_encrypted.is_not(None),
                SocialAccount.token_expires_at.is_not(None),
                SocialAccount.token_expires_at <= horizon,
            )
            .order_by(SocialAccount.token_expires_at)
            .limit(batch)
        ).all()
        db.session.commit()
    outcomes: Counter[str] = Counter()
    unreadable: list[str] = []
    for account_id, agency_id in due:
        tenancy.enter_agency(agency_id)
        try:
            # Skip a row another run holds: refreshing twice would burn a rotating token.
            account = db.session.scalars(
                tenancy.scoped_select(SocialAccount)
                .where(SocialAccount.id == account_id)
                .with_for_update(skip_locked=True)
            ).first()
            if account is None:
                db.session.rollback()
                outcomes["skipped"] += 1
                continue
            outcome = refresh_account(account, now=now)
            outcomes[outcome] += 1
            if outcome == "unreadable":
                unreadable.append(account_id)
            db.session.commit()
        finally:
            tenancy.set_scope(tenancy.NO_SCOPE)
    if unreadable:
        raise UnreadableCredentials(unreadable, dict(outcomes))
    return dict(outcomes)
