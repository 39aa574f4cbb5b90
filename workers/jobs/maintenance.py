"""Housekeeping jobs."""

from __future__ import annotations

from workers.context import job


@job
def purge_expired_records() -> dict[str, int]:
    """Forget idempotency records past their 24 h and spent refresh tokens past expiry."""
    from app.services import maintenance

    return maintenance.purge_expired()


@job
def delete_orphaned_media_files() -> dict[str, int]:
    """Delete stored media files that no database row points to (see app/services/media_sweep)."""
    from app.services import media_sweep

    return media_sweep.delete_orphans()
