"""Test values for the connectors' publishing methods: media items made in memory, requests."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from itertools import count

from PIL import Image

from app.networks.base import MediaItem, PublishRequest

_keys = count(1)


def png(width: int = 64, height: int = 48, colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(width: int = 64, height: int = 48, colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def media_item(
    data: bytes | None = None,
    *,
    content_type: str = "image/png",
    alt_text: str | None = "A teal square",
    width: int = 64,
    height: int = 48,
    url: str | None = None,
    filename: str = "square.png",
) -> MediaItem:
    data = png(width, height) if data is None else data
    return MediaItem(
        content_type=content_type,
        size_bytes=len(data),
        open=lambda: io.BytesIO(data),
        filename=filename,
        width=width,
        height=height,
        alt_text=alt_text,
        url=url,
    )


def publish_request(text: str = "Hello from Relais", **options) -> PublishRequest:
    """A request with a fresh idempotency key (pass `idempotency_key` to repeat one)."""
    options.setdefault("idempotency_key", f"dlv_test{next(_keys):06d}")
    options.setdefault("scheduled_for", datetime.now(UTC).replace(microsecond=0))
    return PublishRequest(text=text, **options)
