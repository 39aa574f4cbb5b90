"""Media storage: one backend per app, chosen by MEDIA_STORAGE (`local` or `s3`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from app.storage.base import (
    InvalidKey,
    Storage,
    StorageUnavailable,
    brand_prefix,
    check_key,
    media_key,
)
from app.storage.local import LocalStorage

__all__ = [
    "InvalidKey",
    "LocalStorage",
    "Storage",
    "StorageUnavailable",
    "brand_prefix",
    "check_config",
    "check_key",
    "get_storage",
    "media_key",
]

BACKENDS = ("local", "s3")


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse, at start, a storage configuration that cannot work (or, in production, one that
    only works by accident: files under ./var of whatever directory the process started in)."""
    kind = config.get("MEDIA_STORAGE", "local")
    if kind not in BACKENDS:
        raise RuntimeError(f"MEDIA_STORAGE={kind!r} is not a storage backend (local or s3).")
    if kind == "s3" and not config.get("S3_BUCKET"):
        raise RuntimeError("MEDIA_STORAGE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL outside AWS).")
    style = config.get("S3_ADDRESSING_STYLE") or "auto"
    if kind == "s3" and style not in ("auto", "path", "virtual"):
        raise RuntimeError(f"S3_ADDRESSING_STYLE={style!r}: use auto, path or virtual.")
    if kind == "local" and config.get("ENV") == "production" and not config.get("MEDIA_ROOT"):
        raise RuntimeError(
            "RELAIS_ENV=production with MEDIA_STORAGE=local needs MEDIA_ROOT: a folder every "
            "API process and worker shares. On several machines, use MEDIA_STORAGE=s3."
        )


def make_storage(config: Mapping[str, Any]) -> Storage:
    if config.get("MEDIA_STORAGE", "local") == "s3":
        # Imported here: boto3 takes about 0.3 s to import, which `make run` and the
        # local backend need not pay.
        from app.storage.s3 import S3Storage

        return S3Storage(
            config["S3_BUCKET"],
            prefix=config.get("S3_PREFIX", ""),
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            access_key_id=config.get("S3_ACCESS_KEY_ID"),
            secret_access_key=config.get("S3_SECRET_ACCESS_KEY"),
            addressing_style=config.get("S3_ADDRESSING_STYLE") or "auto",
        )
    from app.config import VAR_DIR

    return LocalStorage(config.get("MEDIA_ROOT") or VAR_DIR / "media")


def get_storage() -> Storage:
    """The current app's storage backend, made on first use (no I/O at import or start)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    storage = app.extensions.get("relais_storage")
    if storage is None:
        storage = app.extensions["relais_storage"] = make_storage(app.config)
    return storage
