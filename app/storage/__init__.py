"""Media storage: one backend per app, chosen by MEDIA_STORAGE (only `local` for now)."""

from __future__ import annotations

from flask import Flask, current_app

from app.storage.base import InvalidKey, Storage, brand_prefix, check_key, media_key
from app.storage.local import LocalStorage

__all__ = [
    "InvalidKey",
    "LocalStorage",
    "Storage",
    "brand_prefix",
    "check_key",
    "get_storage",
    "media_key",
]


def make_storage(app: Flask) -> Storage:
    kind = app.config.get("MEDIA_STORAGE", "local")
    if kind == "local":
        return LocalStorage(app.config["MEDIA_ROOT"])
    raise RuntimeError(f"unknown MEDIA_STORAGE {kind!r} (supported: local)")


def get_storage() -> Storage:
    """The current app's storage backend, made on first use (no I/O at import or start)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    storage = app.extensions.get("relais_storage")
    if storage is None:
        storage = app.extensions["relais_storage"] = make_storage(app)
    return storage
