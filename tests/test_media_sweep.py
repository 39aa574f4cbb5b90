"""The orphaned-media sweep, on local disk and on the S3 backend: files no live media row names
are deleted once past the grace period, across agencies; files of live media, and young files
(an upload in progress), are kept; each run looks at a bounded number of files and the next
one carries on."""

from __future__ import annotations

import io
import os
import tempfile
from datetime import timedelta

import pytest

from app import tenancy
from app.extensions import db, redis
from app.ids import new_id
from app.models import Media
from app.models.base import utcnow
from app.services import media_sweep
from app.storage import local as local_backend
from app.storage import media_key
from tests.media_files import image_bytes, upload

LATER = timedelta(hours=2)  # past the default grace of an hour


@pytest.fixture(autouse=True)
def _fresh_tour(app):
    with app.app_context():
        redis.client.delete(media_sweep.CURSOR_KEY)
    yield
    with app.app_context():
        redis.client.delete(media_sweep.CURSOR_KEY)


def _sweep(app, **config):
    with app.app_context():
        for key, value in config.items():
            app.config[key] = value
        return media_sweep.delete_orphans(now=utcnow() + LATER)


def _uploaded(client, owner, brand_id) -> str:
    response = upload(client, owner, brand_id, image_bytes(), "a.png")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _stray(storage, agency_id, brand_id) -> str:
    """A file stored for an upload whose row never committed."""
    key = media_key(agency_id, brand_id, new_id("med") + ".png")
    storage.save(key, io.BytesIO(image_bytes()))
    return key


def test_orphans_are_deleted_and_live_media_kept(app, client, make_agency, media_store):
    first, second = make_agency("One"), make_agency("Two")
    kept = [_uploaded(client, a, a.brands[0]) for a in (first, second)]
    strays = [_stray(media_store.storage, a.agency_id, a.brands[0]) for a in (first, second)]
    # A deletion whose file the store did not take: the row says deleted, the file stayed.
    deleted_id = _uploaded(client, first, first.brands[0])
    with app.app_context(), tenancy.system_scope():
        row = db.session.get(Media, deleted_id)
        row.deleted_at = utcnow()
        deleted_key = row.storage_key
        db.session.commit()
    before = {str(p) for p in media_store.stored()}
    assert set(strays) | {deleted_key} <= before and len(before) == 5

    assert _sweep(app) == {"scanned": 5, "orphans": 3, "deleted": 3}
    after = {str(p) for p in media_store.stored()}
    assert after == before - set(strays) - {deleted_key}
    for owner, media_id in zip((first, second), kept, strict=True):
        content = client.get(
            f"/v1/brands/{owner.brands[0]}/media/{media_id}/content", headers=owner.headers
        )
        assert content.status_code == 200
    assert _sweep(app) == {"scanned": 2, "orphans": 0, "deleted": 0}


def test_young_files_may_belong_to_an_upload_in_progress(app, make_agency, media_store):
    owner = make_agency("Young")
    key = _stray(media_store.storage, owner.agency_id, owner.brands[0])
    with app.app_context():
        assert media_sweep.delete_orphans() == {"scanned": 1, "orphans": 0, "deleted": 0}
    assert [str(p) for p in media_store.stored()] == [key]


def test_each_run_is_bounded_and_the_next_carries_on(app, make_agency, media_store, monkeypatch):
    owner = make_agency("Many")
    monkeypatch.setitem(app.config, "MEDIA_ORPHAN_SWEEP_LIMIT", 2)
    for _ in range(5):
        _stray(media_store.storage, owner.agency_id, owner.brands[0])
    runs = [_sweep(app) for _ in range(3)]
    assert [r["scanned"] for r in runs] == [2, 2, 1]
    assert sum(r["deleted"] for r in runs) == 5
    assert media_store.stored() == []
    with app.app_context():  # the tour is over: the next one starts from the beginning
        assert redis.client.get(media_sweep.CURSOR_KEY) is None


def test_a_killed_local_upload_leaves_a_temporary_the_sweep_removes(
    app,
    make_agency,
    media_store,
):
    if media_store.kind != "local":
        pytest.skip("S3 keeps no temporary (a bucket rule aborts unfinished multipart uploads)")
    owner = make_agency("Killed")
    # What a save killed before its rename leaves: the temporary it was writing.
    folder = media_store.storage.root / owner.agency_id / owner.brands[0]
    folder.mkdir(parents=True)
    descriptor, name = tempfile.mkstemp(dir=folder, prefix=local_backend.UPLOAD_PREFIX)
    os.write(descriptor, b"half a file")
    os.close(descriptor)
    assert _sweep(app) == {"scanned": 1, "orphans": 1, "deleted": 1}
    assert not os.path.exists(name)
