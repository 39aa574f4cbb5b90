from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import Base, BrandScoped, Timestamps

# The types a media file may have (`Media.content_type`), with the names people know them by.
# Told apart by their bytes in app/services/media_probe.py; the API's schema lists them too.
ALLOWED_TYPES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "video/mp4": "MP4",
    "video/quicktime": "QuickTime (MOV)",
}


class Media(BrandScoped, Timestamps, Base):
    """A file a brand uploaded (image or video), kept by a storage backend under `storage_key`."""

    __tablename__ = "media"
    # Keyset listing of a brand's media.
    __table_args__ = (Index("ix_media_brand_id_id", "brand_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("media"))
    filename: Mapped[str] = mapped_column(String(255))
    # The type detected from the file's own bytes, not the one the uploader claimed.
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None]
    alt_text: Mapped[str | None] = mapped_column(String(1500))
    storage_key: Mapped[str] = mapped_column(String(500))
    uploaded_by_user_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime | None]
    # Deleted media keep their row (posts already published still name them) but lose the file.
    deleted_at: Mapped[datetime | None]
    # Bumped on every write: the ETag, and SQLAlchemy's guard against lost updates.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
