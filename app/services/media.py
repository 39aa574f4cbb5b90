"""Media: upload (type checked from the bytes, sized, hashed), alt text, delete, and the files.

The type a file gets is the one its bytes show (app/services/media_probe.py); a file whose name
or declared type says something else is refused, so nobody stores a script named `cat.jpg`.
Files live in the storage backend under `agency_id/brand_id/<media id><ext>`, a name made from
our own ids; the uploader's file name is kept only as a label.
"""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Select

from app import tenancy
from app.auth.principal import Principal
from app.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from app.extensions import db
from app.ids import id_factory
from app.models import Brand, Media, Post, PostMedia, PostVariant
from app.models.base import utcnow
from app.services import audit, lifecycle, posts
from app.services.media_probe import (
    ALLOWED_TYPES,
    EXTENSIONS,
    PREFERRED_EXTENSION,
    SNIFF_BYTES,
    TYPE_ALIASES,
    ProbeError,
    probe,
    sniff_type,
)
from app.storage import StorageUnavailable, brand_prefix, get_storage, media_key

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_UNTYPED = {"", "application/octet-stream", "binary/octet-stream"}
_ACCEPTED = ", ".join(ALLOWED_TYPES.values())
new_media_id = id_factory("media")


def _family(content_type: str) -> str:
    # MP4 and MOV are one container family: cameras and phones mix their names freely.
    return "iso-video" if content_type in ("video/mp4", "video/quicktime") else content_type


def clean_filename(raw: str | None) -> str:
    """The uploader's file name as a label: last path segment, printable, at most 255 chars."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    # Cut before normalising: NFC is quadratic in a long run of combining marks, and a multipart
    # header can carry a file name of any length.
    name = unicodedata.normalize("NFC", name[:1024])
    name = "".join(ch for ch in name if ch.isprintable()).strip().strip(".")
    return name[:255] or "upload"


def _invalid(detail: str, field: str = "file") -> ValidationFailed:
    return ValidationFailed(detail, errors={field: [detail]})


def _claimed_types(filename: str, declared: str | None) -> tuple[str | None, str | None]:
    """(type the extension claims, type the Content-Type claims); None where nothing is claimed."""
    suffix = PurePosixPath(filename).suffix.lower()
    by_extension = None
    if suffix:
        by_extension = EXTENSIONS.get(suffix)
        if by_extension is None:
            raise _invalid(f"Files named '*{suffix}' are not accepted; upload {_ACCEPTED} files.")
    declared = (declared or "").split(";")[0].strip().lower()
    declared = TYPE_ALIASES.get(declared, declared)
    if declared in _UNTYPED:
        return by_extension, None
    if declared not in ALLOWED_TYPES:
        raise _invalid(f"Files of type {declared} are not accepted; upload {_ACCEPTED} files.")
    return by_extension, declared


def _hash_and_measure(source: BinaryIO) -> tuple[str, int]:
    limit = current_app.config["MEDIA_MAX_BYTES"]
    digest = hashlib.sha256()
    size = 0
    source.seek(0)
    while chunk := source.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Files may be at most {limit:,} bytes.")
        digest.update(chunk)
    return digest.hexdigest(), size


def _check_size(content_type: str, size: int) -> None:
    if size == 0:
        raise _invalid("The file is empty.")
    key = "MEDIA_MAX_IMAGE_BYTES" if content_type.startswith("image/") else "MEDIA_MAX_VIDEO_BYTES"
    limit = current_app.config[key]
    if size > limit:
        kind = "Images" if content_type.startswith("image/") else "Videos"
        raise PayloadTooLarge(f"{kind} may be at most {limit:,} bytes; this file has {size:,}.")


def upload(
    brand: Brand,
    source: BinaryIO,
    *,
    filename: str | None,
    declared_type: str | None,
    alt_text: str | None = None,
    user_id: str | None = None,
    actor: audit.Actor,
) -> Media:
    """Check, store and record one uploaded file. `source` must be seekable (Werkzeug spools
    uploads to a temporary file)."""
    name = clean_filename(filename)
    by_extension, by_header = _claimed_types(name, declared_type)
    sha256, size = _hash_and_measure(source)
    source.seek(0)
    actual = sniff_type(source.read(SNIFF_BYTES))
    if actual is None:
        if size == 0:
            raise _invalid("The file is empty.")
        raise _invalid(f"The file's content is not one of the accepted types ({_ACCEPTED}).")
    for claim, how in ((by_extension, "its name"), (by_header, "its declared type")):
        if claim and _family(claim) != _family(actual):
            raise _invalid(
                f"The file is not what {how} says: {how} says {ALLOWED_TYPES[claim]} "
                f"but its content is {ALLOWED_TYPES[actual]}."
            )
    _check_size(actual, size)
    try:
        info = probe(source, actual)
    except ProbeError as exc:
        raise _invalid(f"The file cannot be read: {exc}.") from None

    media_id = new_media_id()
    key = media_key(brand.agency_id, brand.id, media_id + PREFERRED_EXTENSION[actual])
    source.seek(0)
    storage = get_storage()
    storage.save(key, source)
    try:
        media = Media(
            id=media_id,
            agency_id=brand.agency_id,
            brand_id=brand.id,
            filename=name,
            content_type=actual,
            size_bytes=size,
            sha256=sha256,
            width=info.width,
            height=info.height,
            duration_seconds=info.duration_seconds,
            alt_text=alt_text or None,
            storage_key=key,
            uploaded_by_user_id=user_id,
        )
        db.session.add(media)
        audit.record(
            "media.uploaded", actor=actor, agency_id=brand.agency_id, brand_id=brand.id,
            target_type="media", target_id=media_id,
            data={"content_type": actual, "size_bytes": size},
        )  # fmt: skip
        db.session.commit()
    except BaseException:
        db.session.rollback()
        _forget_file(key)  # no row, no file
        raise
    return media


def list_statement(brand_id: str, principal: Principal, kind: str | None = None) -> Select[Any]:
    """The brand's media that `principal` may see (a client: the media of posts they see)."""
    stmt = tenancy.scoped_select(Media).where(
        Media.brand_id == brand_id,
        Media.deleted_at.is_(None),
        *posts.media_visible_to(principal, brand_id),
    )
    if kind:
        stmt = stmt.where(Media.content_type.like(f"{kind}/%"))
    return stmt


def get_or_404(brand_id: str, media_id: str, principal: Principal) -> Media:
    """A media item of the brand that `principal` may see; any other is a 404."""
    media = tenancy.get_in_brand_or_404(
        Media, brand_id, media_id, what="media", where=posts.media_visible_to(principal, brand_id)
    )
    if media.deleted_at is not None:
        raise NotFound(f"No media with id '{media_id}' in brand '{brand_id}'.")
    return media


def update(media: Media, changes: dict[str, Any], *, actor: audit.Actor) -> Media:
    if "alt_text" in changes:
        media.alt_text = changes["alt_text"] or None
    media.updated_at = utcnow()
    audit.record(
        "media.updated", actor=actor, agency_id=media.agency_id, brand_id=media.brand_id,
        target_type="media", target_id=media.id, data={"fields": sorted(changes)},
    )  # fmt: skip
    db.session.commit()
    return media


def _posts_holding(media: Media) -> list[str]:
    """Ids of posts under review, approved or about to publish that use this media item."""
    direct = db.session.scalars(
        tenancy.scoped_select(PostMedia, PostMedia.post_id)
        .join(Post, Post.id == PostMedia.post_id)
        .where(
            PostMedia.brand_id == media.brand_id,
            PostMedia.media_id == media.id,
            Post.status.in_(sorted(lifecycle.LOCKS_MEDIA)),
        )
    )
    held = set(direct)
    variants = db.session.execute(
        tenancy.scoped_select(PostVariant, PostVariant.post_id, PostVariant.media_ids)
        .join(Post, Post.id == PostVariant.post_id)
        .where(
            PostVariant.brand_id == media.brand_id,
            PostVariant.media_ids.is_not(None),
            Post.status.in_(sorted(lifecycle.LOCKS_MEDIA)),
        )
    )
    held.update(post_id for post_id, ids in variants if ids and media.id in ids)
    return sorted(held)


def delete(media: Media, *, actor: audit.Actor) -> None:
    """Forget the file; keep the row (deleted) so published posts still say what they carried."""
    holders = _posts_holding(media)
    if holders:
        raise Conflict(
            f"The media is used by post(s) {', '.join(holders[:5])} that are in review, approved "
            "or scheduled; remove it from them first.",
        )
    media.deleted_at = utcnow()
    media.updated_at = media.deleted_at
    audit.record(
        "media.deleted", actor=actor, agency_id=media.agency_id, brand_id=media.brand_id,
        target_type="media", target_id=media.id,
    )  # fmt: skip
    db.session.commit()
    # After the commit: a failed transaction must not lose a file its row still points to.
    _forget_file(media.storage_key)


def _forget_file(key: str) -> None:
    """Delete a file no row points to any more. With the store down, the deletion the caller
    asked for has still happened: the stray file is logged, not an error, and the periodic
    sweep (app/services/media_sweep.py) removes it later."""
    try:
        get_storage().delete(key)
    except StorageUnavailable:
        log.error("media file %s could not be deleted; the orphan sweep will remove it", key)


def open_file(media: Media) -> tuple[str | None, BinaryIO | None]:
    """(local path, or an open stream) for the media's bytes; NotFound if the file is gone."""
    storage = get_storage()
    path = storage.local_path(media.storage_key)
    if path is not None:
        if not storage.exists(media.storage_key):
            raise _missing(media)
        return path, None
    try:
        return None, storage.open(media.storage_key)
    except FileNotFoundError:
        raise _missing(media) from None


def _missing(media: Media) -> NotFound:
    log.error("media %s has no stored file under %s", media.id, media.storage_key)
    return NotFound(f"The file of media '{media.id}' is not available.")


def remove_brand_files(agency_id: str, brand_id: str) -> int:
    """Delete every stored file of one brand (offboarding). Returns how many were removed."""
    prefix = brand_prefix(agency_id, brand_id)
    try:
        return get_storage().delete_prefix(prefix)
    except StorageUnavailable:
        # The brand's rows are gone already (see brands.offboard); its files are left to the
        # orphan sweep (app/services/media_sweep.py).
        log.error("media files under %s/ could not be deleted; the orphan sweep will", prefix)
        return 0


def download_name(media: Media) -> str:
    """A file name for Content-Disposition with the right extension whatever was uploaded."""
    stem = PurePosixPath(media.filename).stem or media.id
    return stem + PREFERRED_EXTENSION.get(media.content_type, "")


# -- signed links, for networks that fetch media by URL ----------------------------------------
#
# Instagram and Facebook take an `image_url`/`video_url` they download themselves and cannot
# send our credentials. A signed link names one media item of one agency and expires; it is
# minted by the publishing code for one publish, never listed, and dies with the media.

_LINK_SALT = "relais.media-link.v1"


def _link_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_LINK_SALT)


def signed_url(media: Media, ttl_seconds: int | None = None) -> str:
    """An absolute URL that serves the media's file without credentials until it expires."""
    ttl = ttl_seconds or current_app.config["MEDIA_LINK_TTL_SECONDS"]
    token = _link_serializer().dumps(
        {"m": media.id, "a": media.agency_id, "e": int(time.time()) + int(ttl)}
    )
    base = current_app.config["API_BASE_URL"].rstrip("/")
    return f"{base}/v1/media-files/{token}"


def get_by_signed_token(token: str) -> Media:
    """The media a signed link names, with the tenant scope it was minted for; 404 when the
    link is forged, expired, or its media deleted (a dead link says no more than a wrong one)."""
    dead = NotFound("This media link is not valid, or has expired.")
    try:
        claims = _link_serializer().loads(token)
    except BadSignature:
        raise dead from None
    if not isinstance(claims, dict) or not {"m", "a", "e"} <= claims.keys():
        raise dead
    if not isinstance(claims["e"], int) or claims["e"] < time.time():
        raise dead
    # The signature vouches for the agency: this is the link's authentication step.
    tenancy.enter_agency(str(claims["a"]))
    media = db.session.scalars(
        tenancy.scoped_select(Media).where(Media.id == str(claims["m"]))
    ).first()
    if media is None or media.deleted_at is not None:
        raise dead
    return media
