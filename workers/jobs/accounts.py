"""Social-account jobs."""

from __future__ import annotations

from workers.context import job


@job
def refresh_expiring_tokens() -> dict[str, int]:
    """Refresh tokens nearing expiry; mark `expiring` / `needs_reconnect` where they cannot be."""
    from app.services import token_refresh

    return token_refresh.refresh_expiring_tokens()


@job
def revoke_offboarded_account(revocation_id: str, agency_id: str) -> str:
    """Revoke at its network the tokens of an account whose brand was offboarded."""
    from app.services import account_revocations

    return account_revocations.revoke(revocation_id, agency_id)


@job
def enqueue_stalled_revocations() -> int:
    """Enqueue again the revocations whose job Redis lost."""
    from app.services import account_revocations

    return account_revocations.enqueue_stalled()
