"""The periodic sweep of media files no database row points to.

Files and rows cannot change in one transaction, so the code orders them to fail safe: an
upload stores its file, then commits its row; a deletion commits, then removes the file. What
a failure leaves is therefore always a file without a row, never a row without its file:

- a process killed between storing a file and committing its row (or mid-write, on the local
  backend: its `_upload-…` temporary);
- a deletion, or a brand's offboarding, whose file removal the store did not take.

Each run lists up to MEDIA_ORPHAN_SWEEP_LIMIT files from where the previous run stopped (the
position is kept in Redis; losing it only starts the tour again), looks their media ids up in
batches, and deletes the files older than MEDIA_ORPHAN_GRACE_SECONDS that no live media row
names (younger ones may belong to an upload still running). The look-up spans every agency,
through `tenancy.system_scope()`, and reads ids and keys only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from flask import current_app
from sqlalchemy import select

from app import metrics, tenancy
from app.extensions import db, redis
from app.models import Media
from app.models.base import utcnow
from app.storage import StorageUnavailable, get_storage

log = logging.getLogger(__name__)

CURSOR_KEY = "relais:media-sweep:after"
LOOKUP_BATCH = 500


def delete_orphans(*, now: datetime | None = None) -> dict[str, int]:
    """One run of the sweep: how many files it looked at, found orphaned, and deleted."""
    config = current_app.config
    now = now or utcnow()
    cutoff = now - timedelta(seconds=config["MEDIA_ORPHAN_GRACE_SECONDS"])
    limit = config["MEDIA_ORPHAN_SWEEP_LIMIT"]
    storage = get_storage()
    start_after = _load_cursor()
    files = storage.list_files(start_after=start_after, limit=limit)
    candidates = [f.key for f in files if f.modified_at < cutoff]
    live = _live_keys(candidates)
    orphans = [key for key in candidates if key not in live]
    deleted = 0
    for key in orphans:
        try:
            deleted += storage.delete(key)
        except StorageUnavailable:
            log.error("media sweep: the store did not take the deletion of %s; next tour", key)
            break
    # A short page is the end of the tour: the next run starts from the beginning.
    _save_cursor(files[-1].key if len(files) == limit else "")
    metrics.media_orphans_deleted(config.get("MEDIA_STORAGE", "local"), deleted)
    if orphans:
        log.info("media sweep deleted %d orphaned file(s) of %d looked at", deleted, len(files))
    return {"scanned": len(files), "orphans": len(orphans), "deleted": deleted}


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def _live_keys(keys: Sequence[str]) -> set[str]:
    """The keys among `keys` that a media row (not deleted) names. A key's file is named after
    its media id, so the look-up goes by primary key."""
    by_id: dict[str, str] = {PurePosixPath(key).stem: key for key in keys}
    ids = list(by_id)
    live: set[str] = set()
    with tenancy.system_scope():
        for start in range(0, len(ids), LOOKUP_BATCH):
            batch = ids[start : start + LOOKUP_BATCH]
            rows = db.session.execute(
                select(Media.storage_key).where(Media.id.in_(batch), Media.deleted_at.is_(None))
            )
            live.update(key for (key,) in rows)
        db.session.rollback()
    return live


def _load_cursor() -> str:
    if redis.client is None:
        return ""
    value = redis.client.get(CURSOR_KEY)
    return value.decode() if value else ""


def _save_cursor(key: str) -> None:
    if redis.client is None:
        return
    if key:
        redis.client.set(CURSOR_KEY, key)
    else:
        redis.client.delete(CURSOR_KEY)
