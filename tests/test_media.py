"""Media: upload with type and size checks, list/get/patch/delete, download, storage safety.

Every test runs twice: on local disk, and on the S3 backend against a real S3-compatible server
(moto's server mode on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import io
import struct
from pathlib import PurePosixPath

import pytest

from app.services.media_probe import probe, sniff_type
from app.storage import InvalidKey, brand_prefix, media_key
from tests.media_files import MediaStore, image_bytes, mp4_bytes, upload

# -- sniffing and probing ----------------------------------------------------------------------

# Every test here runs on local disk and on S3 (conftest.py).
pytestmark = pytest.mark.usefixtures("media_store")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("PNG"), "image/png"),
        (image_bytes("GIF"), "image/gif"),
        (image_bytes("WEBP"), "image/webp"),
        (mp4_bytes(), "video/mp4"),
        (mp4_bytes(brand=b"qt  "), "video/quicktime"),
        (mp4_bytes(brand=b"mp42"), "video/mp4"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", None),  # HEIF shares the box
        (b"%PDF-1.7\n", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"MZ\x90\x00", None),
        (b"", None),
    ],
)
def test_sniff_type(content: bytes, expected: str | None) -> None:
    assert sniff_type(content[:32]) == expected


def test_probe_reads_image_and_video_dimensions() -> None:
    info = probe(io.BytesIO(image_bytes("JPEG", (120, 80))), "image/jpeg")
    assert (info.width, info.height, info.duration_seconds) == (120, 80, None)
    video = probe(io.BytesIO(mp4_bytes(seconds=7.25, size=(1280, 720))), "video/mp4")
    assert (video.width, video.height, video.duration_seconds) == (1280, 720, 7.25)


# -- storage keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "agy_1/brd_1/../../x", "/abs/brd/x", "a/b", "a//c", "a/b/c/d", "a/b/.x",
     "a/b/..", "a\\b/c/d"],
)  # fmt: skip
def test_storage_refuses_keys_that_could_escape(media_store: MediaStore, key: str) -> None:
    storage = media_store.storage
    with pytest.raises(InvalidKey):
        storage.save(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidKey):
        storage.delete(key)


def test_storage_keys_are_namespaced_per_tenant(media_store: MediaStore) -> None:
    storage = media_store.storage
    a = media_key("agy_A", "brd_1", "med_1.png")
    b = media_key("agy_B", "brd_1", "med_1.png")
    storage.save(a, io.BytesIO(b"a"))
    storage.save(b, io.BytesIO(b"b"))
    with storage.open(a) as fa, storage.open(b) as fb:
        assert fa.read() == b"a" and fb.read() == b"b"
    assert storage.delete_prefix(brand_prefix("agy_A", "brd_1")) == 1
    assert not storage.exists(a) and storage.exists(b)
    assert storage.delete(a) is False  # twice is fine
    assert media_store.stored() == [PurePosixPath(b)]
    assert storage.delete_prefix(brand_prefix("agy_A", "brd_1")) == 0


# -- upload ------------------------------------------------------------------------------------


def test_upload_image_happy_path(media_store, client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    content = image_bytes("PNG", (64, 48))
    response = upload(client, owner, brand, content, "logo.png", "image/png", alt_text=" Logo ")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"].startswith("med_")
    assert body["content_type"] == "image/png" and body["kind"] == "image"
    assert (body["width"], body["height"]) == (64, 48)
    assert body["size_bytes"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["alt_text"] == "Logo" and body["filename"] == "logo.png"
    assert response.headers["ETag"]

    [key] = media_store.stored()
    assert media_store.read(key) == content
    assert key.parts[:2] == (owner.agency_id, brand)

    got = client.get(f"/v1/brands/{brand}/media/{body['id']}", headers=owner.headers)
    assert got.status_code == 200 and got.get_json() == body

    download = client.get(f"/v1/brands/{brand}/media/{body['id']}/content", headers=owner.headers)
    assert download.status_code == 200
    assert download.data == content
    assert download.mimetype == "image/png"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(
        f"/v1/brands/{brand}/media/{body['id']}/content",
        headers={**owner.headers, "If-None-Match": download.headers["ETag"]},
    )
    assert again.status_code == 304


def test_download_honours_byte_ranges(client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    content = mp4_bytes(seconds=3.0)
    media_id = upload(client, owner, brand, content, "clip.mp4").get_json()["id"]
    url = f"/v1/brands/{brand}/media/{media_id}/content"
    whole = client.get(url, headers=owner.headers)
    assert whole.status_code == 200 and whole.data == content
    assert whole.headers["Content-Length"] == str(len(content))
    assert whole.headers["Accept-Ranges"] == "bytes"
    middle = client.get(url, headers={**owner.headers, "Range": "bytes=10-49"})
    assert middle.status_code == 206
    assert middle.data == content[10:50]
    assert middle.headers["Content-Range"] == f"bytes 10-49/{len(content)}"
    tail = client.get(url, headers={**owner.headers, "Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.data == content[-16:]
    past = client.get(url, headers={**owner.headers, "Range": f"bytes={len(content) + 5}-"})
    assert past.status_code == 416


def test_a_failed_upload_leaves_no_orphan_file(
    app, media_store, client, make_agency, monkeypatch
) -> None:
    from app.services import audit

    owner = make_agency()

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    # The file is stored before the row is committed; when the commit fails, the file goes.
    with monkeypatch.context() as patched:
        patched.setattr(audit, "record", fail)
        response = upload(client, owner, owner.brands[0], image_bytes(), "a.png")
    assert response.status_code == 500
    assert response.content_type == "application/problem+json"
    assert media_store.stored() == []
    listed = client.get(f"/v1/brands/{owner.brands[0]}/media", headers=owner.headers)
    assert listed.get_json()["items"] == []


def test_upload_video_records_duration(client, make_agency) -> None:
    owner = make_agency()
    response = upload(client, owner, owner.brands[0], mp4_bytes(seconds=12.5), "clip.mp4")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["content_type"] == "video/mp4" and body["kind"] == "video"
    assert body["duration_seconds"] == 12.5
    assert (body["width"], body["height"]) == (640, 360)
    # An MP4 named .mov is the same container family, and keeps its detected type.
    renamed = upload(client, owner, owner.brands[0], mp4_bytes(), "clip.mov", "video/quicktime")
    assert renamed.status_code == 201 and renamed.get_json()["content_type"] == "video/mp4"


@pytest.mark.parametrize(
    ("content", "name", "mimetype", "needle"),
    [
        (b"<?php system($_GET['c']); ?>", "cat.jpg", "image/jpeg", "not one of the accepted"),
        (image_bytes("PNG"), "photo.jpg", None, "its name says JPEG but its content is PNG"),
        (image_bytes("PNG"), "photo", "image/jpeg", "declared type says JPEG"),
        (image_bytes("JPEG"), "photo.svg", "image/svg+xml", "'*.svg' are not accepted"),
        (image_bytes("JPEG"), "photo.jpg", "text/html", "text/html are not accepted"),
        (image_bytes("JPEG")[:40], "cut.jpg", "image/jpeg", "cannot be read"),
        (mp4_bytes()[:60], "cut.mp4", "video/mp4", "cannot be read"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "p.jpg", None, "not one of the"),
        (b"", "empty.png", "image/png", "empty"),
    ],
)
def test_upload_refuses_files_that_are_not_what_they_claim(
    app, media_store, client, make_agency, content, name, mimetype, needle
) -> None:
    owner = make_agency()
    response = upload(client, owner, owner.brands[0], content, name, mimetype)
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert needle in body["detail"], body
    assert body["errors"]["file"]
    assert media_store.stored() == []


def test_upload_without_a_file_part(client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    as_field = client.post(
        f"/v1/brands/{brand}/media", data={"file": "not a file"}, headers=owner.headers,
        content_type="multipart/form-data",
    )  # fmt: skip
    assert as_field.status_code == 422 and "file" in as_field.get_json()["errors"]
    as_json = client.post(f"/v1/brands/{brand}/media", json={"x": 1}, headers=owner.headers)
    assert as_json.status_code == 422


def test_oversize_uploads_are_413(app, media_store, client, make_agency, monkeypatch) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    content = image_bytes("PNG", (300, 300))
    monkeypatch.setitem(app.config, "MEDIA_MAX_IMAGE_BYTES", len(content) - 1)
    too_big = upload(client, owner, brand, content, "big.png")
    assert too_big.status_code == 413
    assert too_big.content_type == "application/problem+json"
    assert "Images may be at most" in too_big.get_json()["detail"]

    # Past the overall cap, Werkzeug stops reading the body at all.
    monkeypatch.setitem(app.config, "MEDIA_MAX_BYTES", 1000)
    way_too_big = upload(client, owner, brand, bytes(200_000), "huge.png")
    assert way_too_big.status_code == 413
    assert way_too_big.content_type == "application/problem+json"
    assert media_store.stored() == []


def test_decompression_bomb_is_refused(client, make_agency) -> None:
    owner = make_agency()
    bomb = image_bytes("PNG", (1, 1))
    # Rewrite the IHDR to claim 100,000 × 100,000 pixels (CRC left stale: Pillow checks size
    # before the CRC only when told to be lenient, so build a real one instead).
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    bomb = (
        bomb[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + bomb[33:]
    )
    response = upload(client, owner, owner.brands[0], bomb, "bomb.png")
    assert response.status_code == 422
    assert "too many pixels" in response.get_json()["detail"]


def test_filename_is_only_a_label(app, media_store, client, make_agency) -> None:
    owner = make_agency()
    response = upload(client, owner, owner.brands[0], image_bytes(), "../../etc/passwd.png")
    assert response.status_code == 201
    assert response.get_json()["filename"] == "passwd.png"
    [path] = media_store.stored()
    assert path.name == response.get_json()["id"] + ".png"


def test_idempotent_upload_replays(app, media_store, client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    content = image_bytes()
    headers = {**owner.headers, "Idempotency-Key": "upload-1"}

    def send(payload: bytes):
        return client.post(
            f"/v1/brands/{brand}/media", data={"file": (io.BytesIO(payload), "a.png")},
            headers=headers, content_type="multipart/form-data",
        )  # fmt: skip

    first, second = send(content), send(content)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"]
    assert len(media_store.stored()) == 1
    assert send(image_bytes(size=(10, 10))).status_code == 422


# -- list, patch, delete -----------------------------------------------------------------------


def test_list_paginates_and_filters(client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    ids = [
        upload(client, owner, brand, image_bytes(), f"{i}.png").get_json()["id"] for i in range(3)
    ]
    ids.append(upload(client, owner, brand, mp4_bytes(), "v.mp4").get_json()["id"])
    page = client.get(f"/v1/brands/{brand}/media?limit=2", headers=owner.headers)
    assert [m["id"] for m in page.get_json()["items"]] == ids[:2]
    assert 'rel="next"' in page.headers["Link"]
    rest = client.get(
        f"/v1/brands/{brand}/media?limit=2&cursor={page.get_json()['next_cursor']}",
        headers=owner.headers,
    )
    assert [m["id"] for m in rest.get_json()["items"]] == ids[2:]
    videos = client.get(f"/v1/brands/{brand}/media?kind=video", headers=owner.headers)
    assert [m["id"] for m in videos.get_json()["items"]] == ids[3:]


def test_patch_alt_text_with_if_match(client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    created = upload(client, owner, brand, image_bytes(), "a.png")
    url = f"/v1/brands/{brand}/media/{created.get_json()['id']}"
    etag = created.headers["ETag"]
    changed = client.patch(
        url, json={"alt_text": "A red square"}, headers={**owner.headers, "If-Match": etag}
    )
    assert changed.status_code == 200 and changed.get_json()["alt_text"] == "A red square"
    stale = client.patch(url, json={"alt_text": "x"}, headers={**owner.headers, "If-Match": etag})
    assert stale.status_code == 412
    cleared = client.patch(url, json={"alt_text": None}, headers=owner.headers)
    assert cleared.get_json()["alt_text"] is None
    too_long = client.patch(url, json={"alt_text": "a" * 1501}, headers=owner.headers)
    assert too_long.status_code == 422


def test_delete_removes_the_file_and_hides_the_item(app, media_store, client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    media_id = upload(client, owner, brand, image_bytes(), "a.png").get_json()["id"]
    assert len(media_store.stored()) == 1
    assert (
        client.delete(f"/v1/brands/{brand}/media/{media_id}", headers=owner.headers).status_code
        == 204
    )
    assert media_store.stored() == []
    for path in ("", "/content"):
        gone = client.get(f"/v1/brands/{brand}/media/{media_id}{path}", headers=owner.headers)
        assert gone.status_code == 404
    listed = client.get(f"/v1/brands/{brand}/media", headers=owner.headers).get_json()
    assert listed["items"] == []
    again = client.delete(f"/v1/brands/{brand}/media/{media_id}", headers=owner.headers)
    assert again.status_code == 404


def test_delete_refused_while_a_scheduled_post_uses_it(
    media_store, client, make_agency, factory
) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    media_id = upload(client, owner, brand, image_bytes(), "a.png").get_json()["id"]
    post_id = factory.post(owner, brand, text="hi", status="scheduled", media_ids=[media_id])
    refused = client.delete(f"/v1/brands/{brand}/media/{media_id}", headers=owner.headers)
    assert refused.status_code == 409 and post_id in refused.get_json()["detail"]
    assert len(media_store.stored()) == 1


# -- tenants, roles, offboarding ---------------------------------------------------------------


def test_another_tenant_cannot_reach_media_or_files(app, media_store, client, make_agency) -> None:
    alice, bob = make_agency("Alice"), make_agency("Bob")
    media_id = upload(client, alice, alice.brands[0], image_bytes(), "a.png").get_json()["id"]
    for path in (f"/v1/brands/{alice.brands[0]}/media/{media_id}",
                 f"/v1/brands/{alice.brands[0]}/media/{media_id}/content",
                 f"/v1/brands/{bob.brands[0]}/media/{media_id}",
                 f"/v1/brands/{bob.brands[0]}/media/{media_id}/content"):  # fmt: skip
        assert client.get(path, headers=bob.headers).status_code == 404, path
        assert client.delete(path, headers=bob.headers).status_code in (404, 405), path
    listed = client.get(f"/v1/brands/{bob.brands[0]}/media", headers=bob.headers).get_json()
    assert listed["items"] == []
    assert upload(client, bob, alice.brands[0], image_bytes(), "x.png").status_code == 404
    assert len(media_store.stored()) == 1


def test_roles(client, make_agency, invite_user) -> None:
    owner = make_agency(brands=2)
    brand, other_brand = owner.brands
    editor = invite_user(owner, brand_id=brand, brand_role="editor")
    client_user = invite_user(owner, brand_id=brand, brand_role="client")
    made = upload(client, editor, brand, image_bytes(), "e.png")
    assert made.status_code == 201
    media_id = made.get_json()["id"]
    assert upload(client, client_user, brand, image_bytes(), "c.png").status_code == 403
    # A client sees the media of the posts put before them only (tests/test_client_visibility.py).
    assert client.get(f"/v1/brands/{brand}/media/{media_id}/content",
                      headers=client_user.headers).status_code == 404  # fmt: skip
    assert client.delete(f"/v1/brands/{brand}/media/{media_id}",
                         headers=client_user.headers).status_code == 404  # fmt: skip
    assert upload(client, editor, other_brand, image_bytes(), "x.png").status_code == 404


def test_offboarding_a_brand_removes_its_files_only(app, media_store, client, make_agency) -> None:
    owner = make_agency(brands=2)
    gone, kept = owner.brands
    upload(client, owner, gone, image_bytes(), "a.png")
    upload(client, owner, gone, mp4_bytes(), "v.mp4")
    kept_id = upload(client, owner, kept, image_bytes(), "b.png").get_json()["id"]
    assert len(media_store.stored()) == 3
    assert client.delete(f"/v1/brands/{gone}", headers=owner.headers).status_code == 204
    [left] = media_store.stored()
    assert left.name.startswith(kept_id)


# -- signed links ------------------------------------------------------------------------------


def _signed_url(app, actor, media_id: str, ttl: int | None = None) -> str:
    from app import tenancy
    from app.extensions import db
    from app.models import Media
    from app.services import media as media_service

    with app.test_request_context():
        tenancy.enter_agency(actor.agency_id)
        url = media_service.signed_url(db.session.get(Media, media_id), ttl)
        db.session.rollback()
    return url.removeprefix(app.config["API_BASE_URL"].rstrip("/"))


def test_signed_link_serves_the_file_without_credentials(app, client, make_agency) -> None:
    owner = make_agency()
    brand = owner.brands[0]
    content = image_bytes("JPEG")
    media_id = upload(client, owner, brand, content, "a.jpg").get_json()["id"]
    path = _signed_url(app, owner, media_id)
    assert path.startswith("/v1/media-files/")
    response = client.get(path)
    assert response.status_code == 200 and response.data == content
    assert response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == "no-store"

    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(forged).status_code == 404
    assert client.get("/v1/media-files/not-a-token").status_code == 404

    client.delete(f"/v1/brands/{brand}/media/{media_id}", headers=owner.headers)
    gone = client.get(path)
    assert gone.status_code == 404 and gone.content_type == "application/problem+json"


def test_signed_link_expires(app, client, make_agency, monkeypatch) -> None:
    import time

    owner = make_agency()
    media_id = upload(client, owner, owner.brands[0], image_bytes(), "a.png").get_json()["id"]
    path = _signed_url(app, owner, media_id, ttl=60)
    assert client.get(path).status_code == 200
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)
    assert client.get(path).status_code == 404


def test_signed_link_is_bound_to_its_agency(app, client, make_agency) -> None:
    from itsdangerous import URLSafeSerializer

    alice, bob = make_agency("Alice"), make_agency("Bob")
    media_id = upload(client, alice, alice.brands[0], image_bytes(), "a.png").get_json()["id"]
    # A correctly signed link naming Alice's media under Bob's agency finds nothing.
    serializer = URLSafeSerializer(app.config["SECRET_KEY"], salt="relais.media-link.v1")
    token = serializer.dumps({"m": media_id, "a": bob.agency_id, "e": 2**40})
    assert client.get(f"/v1/media-files/{token}").status_code == 404
