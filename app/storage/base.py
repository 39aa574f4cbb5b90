"""The storage interface media files go through, and the one rule for keys.

A key is `agency_id/brand_id/name`: every file of a tenant lives under its own prefix, so two
tenants never collide and offboarding a brand removes exactly its prefix. Keys are made by
`media_key` from our own ids, never from a client's file name, and `check_key` refuses anything
else (empty segments, `..`, absolute paths, odd characters) before a backend touches it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from app.errors import AppError

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


class InvalidKey(ValueError):
    """A storage key that does not follow the `agency/brand/name` rule (a programming error)."""


class StorageUnavailable(AppError):
    """The media store did not answer (an object store down, refused credentials): the
    request may succeed later, and the operator needs to know."""

    status, code, title = 503, "storage-unavailable", "Media storage is unavailable"

    def __init__(self, reason: str) -> None:
        # The reason names buckets and keys: for the logs, not for the client.
        super().__init__("Media storage is unavailable; try again in a moment.")
        self.reason = reason


def check_key(key: str, *, prefix: bool = False) -> list[str]:
    """The key's segments, after refusing anything that could escape its tenant's prefix."""
    segments = key.split("/")
    expected = 2 if prefix else 3
    if len(segments) != expected or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidKey(f"not a valid storage {'prefix' if prefix else 'key'}: {key!r}")
    if any(".." in s for s in segments):
        raise InvalidKey(f"not a valid storage key: {key!r}")
    return segments


def media_key(agency_id: str, brand_id: str, name: str) -> str:
    key = f"{agency_id}/{brand_id}/{name}"
    check_key(key)
    return key


def brand_prefix(agency_id: str, brand_id: str) -> str:
    prefix = f"{agency_id}/{brand_id}"
    check_key(prefix, prefix=True)
    return prefix


@dataclass(frozen=True)
class StoredFile:
    """One stored file, as a listing sees it."""

    key: str
    modified_at: datetime  # aware, UTC


def key_order(key: str) -> tuple[str, ...]:
    """How the local backend orders keys: segment by segment."""
    return tuple(key.split("/"))


class Storage(ABC):
    """Where media bytes live. Backends: local disk (the embedded default) and S3-compatible
    object stores (app/storage/s3.py)."""

    @abstractmethod
    def save(self, key: str, source: BinaryIO) -> int:
        """Copy `source` (read to its end) under `key`, atomically; returns the bytes written."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The stored bytes, for reading; FileNotFoundError when there are none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove one file; False when it was already gone (deleting twice is fine)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every file of one brand (`agency_id/brand_id`); returns how many."""

    @abstractmethod
    def list_files(self, *, start_after: str = "", limit: int) -> list[StoredFile]:
        """Up to `limit` stored files whose key follows `start_after`, in the backend's key
        order: page through every file by passing the last key of one page to the next.
        Names that are not storage keys (another program's files) are left out."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless files can be stored now (readiness)."""

    def local_path(self, key: str) -> str | None:
        """A file-system path for the key when the backend has one (lets Flask send it
        with range requests); None otherwise."""
        return None
