"""Revoking an offboarded brand's accounts at their networks.

Offboarding (app/services/brands.py) deletes the brand's accounts with everything else, in one
transaction, and the tokens would stay valid at the networks. So, in that same transaction,
`hold(brand)` copies each account's encrypted credentials into an `AccountRevocation` row of the
agency. Once it commits, one job per row (`workers.jobs.accounts.revoke_offboarded_account`)
calls the connector's `revoke`:

- revoked, or nothing left to revoke (the network already refuses the credentials, or has no
  revocation): the row is deleted and `social_account.revoked_at_network` recorded;
- a network that is down or slow (or a process lacking the key the row was encrypted with):
  the job fails and RQ tries again after each of ACCOUNT_REVOCATION_RETRY_INTERVALS;
- the last try failed, or the network refused in a way retrying will not change: the row (and
  the credentials in it) is deleted and `social_account.revocation_failed` recorded, with the
  network's reason, in the agency's audit trail, for a person to revoke it at the network.

The database is the source of truth: `enqueue_stalled()`, periodic, enqueues again the rows
whose job Redis lost. A row is locked while its network call runs, so two runs of one job never
revoke twice at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from rq import Retry, get_current_job
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app import logs, metrics, queue, tenancy
from app.extensions import db
from app.models import AccountHealth, AccountRevocation, Brand, SocialAccount
from app.models.base import utcnow
from app.networks import connector_for
from app.networks.base import CredentialsRejected, NetworkError, NotSupported
from app.security import crypto
from app.services import audit

log = logging.getLogger(__name__)

REVOKE_JOB = "workers.jobs.accounts.revoke_offboarded_account"
# How late a row may be before the sweep enqueues it again (RQ's own retries come first).
STALL_GRACE = timedelta(minutes=10)
_PENDING = "relais_revocations_pending"
_ERROR_TEXT_LIMIT = 500


class RevocationFailed(RuntimeError):
    """This try failed; RQ tries again (the row says when and why)."""


def hold(brand: Brand) -> list[AccountRevocation]:
    """In the offboarding transaction, before the brand's rows are deleted: keep what is needed
    to revoke each connected account. The jobs are enqueued once the transaction commits."""
    accounts = db.session.scalars(
        tenancy.scoped_select(SocialAccount).where(
            SocialAccount.brand_id == brand.id,
            SocialAccount.credentials_encrypted.is_not(None),
            SocialAccount.health != AccountHealth.REVOKED.value,
        )
    ).all()
    now = utcnow()
    held = [
        AccountRevocation(
            agency_id=brand.agency_id,
            account_id=account.id,
            offboarded_brand_id=brand.id,
            network=account.network,
            handle=account.handle,
            instance_url=account.instance_url,
            credentials_encrypted=account.credentials_encrypted,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for account in accounts
    ]
    session = db.session()
    session.add_all(held)
    session.flush()
    session.info.setdefault(_PENDING, []).extend((r.id, r.agency_id) for r in held)
    return held


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    for revocation_id, agency_id in session.info.pop(_PENDING, []):
        enqueue(revocation_id, agency_id)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def enqueue(revocation_id: str, agency_id: str) -> None:
    intervals = current_app.config["ACCOUNT_REVOCATION_RETRY_INTERVALS"]
    try:
        queue.enqueue(
            REVOKE_JOB,
            revocation_id,
            agency_id,
            job_id=f"revoke-account-{revocation_id}",
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        )
    except Exception:  # noqa: BLE001 - the row is safe in the database; the sweep enqueues it
        log.warning("could not enqueue revocation %s; the sweep will", revocation_id, exc_info=True)


# -- the job -------------------------------------------------------------------------------------


def revoke(revocation_id: str, agency_id: str) -> str:
    """Revoke one held account at its network: `revoked`, `given_up` or `skipped` (gone, held
    by another run, or not this agency's); raises RevocationFailed for RQ to try again."""
    tenancy.enter_agency(agency_id)
    try:
        row = db.session.scalars(
            tenancy.scoped_select(AccountRevocation)
            .where(AccountRevocation.id == revocation_id)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            db.session.rollback()
            return "skipped"
        with logs.bound(account_id=row.account_id, brand_id=row.offboarded_brand_id):
            return _attempt(row)
    finally:
        tenancy.set_scope(tenancy.NO_SCOPE)


def _attempt(row: AccountRevocation) -> str:
    row.attempts += 1
    try:
        secrets = crypto.decrypt(row.credentials_encrypted)
        connector_for(row.network).revoke(secrets, row.instance_url)
    except (CredentialsRejected, NotSupported) as exc:
        return _revoked(row, note=f"nothing to revoke: {exc}")
    except NetworkError as exc:
        if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
            return _give_up(row, str(exc))  # refused for a reason retrying will not change
        return _retry_later(row, exc)
    except Exception as exc:  # noqa: BLE001 - an unreadable key, a bug: counted, retried
        return _retry_later(row, exc)
    return _revoked(row)


def _audit(row: AccountRevocation, action: str, **data: Any) -> None:
    audit.record(
        action,
        actor=audit.SYSTEM,
        agency_id=row.agency_id,
        target_type="social_account",
        target_id=row.account_id,
        data={
            "network": row.network,
            "handle": row.handle,
            "offboarded_brand_id": row.offboarded_brand_id,
            "attempts": row.attempts,
            **data,
        },
    )


def _revoked(row: AccountRevocation, note: str | None = None) -> str:
    _audit(row, "social_account.revoked_at_network", **({"note": note} if note else {}))
    network = row.network
    db.session.delete(row)
    db.session.commit()
    metrics.account_revocation(network, "revoked")
    log.info("revoked account %s at %s", row.account_id, network)
    return "revoked"


def _give_up(row: AccountRevocation, reason: str) -> str:
    reason = reason[:_ERROR_TEXT_LIMIT]
    _audit(
        row,
        "social_account.revocation_failed",
        reason=reason,
        what_to_do=f"Revoke Relais's access from the account's own settings on {row.network}.",
    )
    network = row.network
    db.session.delete(row)  # the credentials go with it
    db.session.commit()
    metrics.account_revocation(network, "given_up")
    log.error(
        "gave up revoking account %s at %s after %d attempt(s): %s",
        row.account_id,
        network,
        row.attempts,
        reason,
    )
    return "given_up"


def _retry_later(row: AccountRevocation, exc: Exception) -> str:
    intervals = current_app.config["ACCOUNT_REVOCATION_RETRY_INTERVALS"]
    job = get_current_job()
    reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, NetworkError) else str(exc)
    if (job is not None and not job.retries_left) or row.attempts > len(intervals):
        return _give_up(row, reason)
    wait = intervals[min(row.attempts - 1, len(intervals) - 1)]
    row.last_error = reason[:_ERROR_TEXT_LIMIT]
    row.next_attempt_at = utcnow() + timedelta(seconds=wait)
    attempts, network = row.attempts, row.network
    db.session.commit()
    metrics.account_revocation(network, "retry")
    log.warning(
        "revoking account %s at %s: attempt %d failed (%s); next in %ds",
        row.account_id,
        network,
        attempts,
        reason,
        wait,
        exc_info=not isinstance(exc, NetworkError | crypto.CredentialsUnreadable),
    )
    raise RevocationFailed(reason)


# -- housekeeping --------------------------------------------------------------------------------


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def enqueue_stalled(limit: int = 1000) -> int:
    """Enqueue again the rows whose time is well past (their job lost with Redis, or never
    enqueued). Returns how many."""
    with tenancy.system_scope():
        due = db.session.execute(
            select(AccountRevocation.id, AccountRevocation.agency_id)
            .where(AccountRevocation.next_attempt_at < utcnow() - STALL_GRACE)
            .order_by(AccountRevocation.next_attempt_at)
            .limit(limit)
        ).all()
        db.session.rollback()
    for revocation_id, agency_id in due:
        enqueue(revocation_id, agency_id)
    return len(due)
