"""Social-account jobs."""

from __future__ import annotations

from workers.context import job


@job
def refresh_expiring_tokens() -> dict[str, int]:
    """Refresh tokens nearing expiry; mark `expiring` / `needs_reconnect` where they cannot be."""
    from app.services import token_refresh

    return token_refresh.refresh_expiring_tokens()
