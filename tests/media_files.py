"""Media files made in memory for the upload tests (an image of any format PIL writes, a
minimal MP4), the upload request itself, and and a look at a storage's files
(`MediaStore`, given by the `media_store` fixture in conftest.py)."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image

from app.storage import Storage


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_bytes(
    brand: bytes = b"isom", seconds: float = 12.5, size: tuple[int, int] = (640, 360)
) -> bytes:
    """A minimal ISO base media file: ftyp, moov (mvhd + one video trak with tkhd), mdat."""
    ftyp = _box(b"ftyp", brand + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41")
    mvhd = _box(
        b"mvhd",
        b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000)) + bytes(80),
    )
    tkhd_payload = (
        b"\x00\x00\x00\x03" + bytes(4 * 5) + bytes(8) + bytes(8) + bytes(36)
        + struct.pack(">II", size[0] << 16, size[1] << 16)
    )  # fmt: skip
    audio_tkhd = _box(b"tkhd", b"\x00\x00\x00\x03" + bytes(80))
    moov = _box(
        b"moov",
        mvhd + _box(b"trak", audio_tkhd) + _box(b"trak", _box(b"tkhd", tkhd_payload)),
    )
    return ftyp + _box(b"mdat", bytes(256)) + moov


def upload(client, actor, brand_id, content: bytes, name: str, mimetype: str | None = None,
           **fields):  # fmt: skip
    data = {
        "file": (io.BytesIO(content), name, mimetype) if mimetype else (io.BytesIO(content), name)
    }
    data.update(fields)
    return client.post(
        f"/v1/brands/{brand_id}/media",
        data=data,
        headers=actor.headers,
        content_type="multipart/form-data",
    )


@dataclass
class MediaStore:
    """The storage backend a test runs on, and a look at what it holds (by storage key)."""

    kind: str
    storage: Storage
    _names: Callable[[], list[str]]

    def stored(self) -> list[PurePosixPath]:
        return [PurePosixPath(name) for name in self._names()]

    def read(self, key: PurePosixPath) -> bytes:
        with self.storage.open(str(key)) as stream:
            return stream.read()
