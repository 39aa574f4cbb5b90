"""What a media file really is, from its own bytes: type, dimensions and duration.

We accept six types and tell them apart by their magic numbers, which needs no library:
JPEG `FF D8 FF`, PNG's 8-byte signature, `GIF87a`/`GIF89a`, `RIFF….WEBP`, and ISO base media
files (`….ftyp` + brand) split into MP4 and QuickTime by their brands. HEIF/AVIF share the ISO
container and are refused by brand. Pillow then opens images (dimensions, and a file that only
starts like an image is refused); for videos we read the `moov` box for duration and size.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from app.models.media import ALLOWED_TYPES

# How many leading bytes `sniff_type` needs.
SNIFF_BYTES = 32

EXTENSIONS = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".qt": "video/quicktime",
}
PREFERRED_EXTENSION = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
}
# Names clients use for our types besides the canonical one.
TYPE_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "video/mov": "video/quicktime",
}

_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VP", b"M4VH", b"dash", b"mmp4",
    b"msnv", b"f4v ", b"NDAS", b"XAVC", b"MSNV",
}  # fmt: skip
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}
# QuickTime files written before `ftyp` existed start with one of these atoms.
_QT_LEADING_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}

_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}


class ProbeError(ValueError):
    """The file starts like an accepted type but is not a readable one."""


@dataclass(frozen=True)
class Probe:
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


def sniff_type(head: bytes) -> str | None:
    """The content type the leading bytes show (one of ALLOWED_TYPES), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _iso_type(head)
    if head[4:8] in _QT_LEADING_ATOMS:
        return "video/quicktime"
    return None


def _iso_type(head: bytes) -> str | None:
    major = head[8:12]
    if major == b"qt  ":
        return "video/quicktime"
    (box_size,) = struct.unpack(">I", head[:4])
    # Compatible brands follow the major brand and its minor version.
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in _MP4_BRANDS or (compatible & _MP4_BRANDS and major not in _HEIF_BRANDS):
        return "video/mp4"
    return None


def probe(source: BinaryIO, content_type: str) -> Probe:
    """Dimensions (and a video's duration) of a file already sniffed as `content_type`."""
    source.seek(0)
    if content_type.startswith("image/"):
        return _probe_image(source, content_type)
    return _probe_iso_video(source)


def _probe_image(source: BinaryIO, content_type: str) -> Probe:
    try:
        # A decompression bomb (a tiny file claiming billions of pixels) is refused as an error.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=[_PIL_FORMATS[content_type]]) as image:
                width, height = image.size
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ProbeError("the image has too many pixels to be processed safely") from exc
    except Exception as exc:  # Pillow raises many kinds for a broken file; all mean "unreadable"
        raise ProbeError(f"the file is not a readable {ALLOWED_TYPES[content_type]} image") from exc
    if width <= 0 or height <= 0:
        raise ProbeError("the image has no pixels")
    return Probe(width=width, height=height)


# --- ISO base media (MP4 / MOV): just enough of the box structure for size and duration ------


def _boxes(source: BinaryIO, start: int, end: int):
    """(type, content offset, content end) of each box between start and end, by seeking only
    (an `mdat` of gigabytes is skipped, never read)."""
    offset = start
    while offset + 8 <= end:
        source.seek(offset)
        header = source.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        content = offset + 8
        if size == 1:  # 64-bit size follows
            large = source.read(8)
            if len(large) < 8:
                return
            (size,) = struct.unpack(">Q", large)
            content += 8
        elif size == 0:  # box runs to the end of the file
            size = end - offset
        if size < content - offset or offset + size > end:
            raise ProbeError("the video's container structure is broken")
        yield kind, content, offset + size
        offset += size


def _probe_iso_video(source: BinaryIO) -> Probe:
    source.seek(0, 2)
    file_end = source.tell()
    duration = width = height = None
    try:
        for kind, start, end in _boxes(source, 0, file_end):
            if kind != b"moov":
                continue
            duration, width, height = _read_moov(source, start, end)
            break
        else:
            raise ProbeError("the video has no `moov` box (not a playable MP4/MOV file)")
    except struct.error as exc:
        raise ProbeError("the video's container structure is broken") from exc
    return Probe(width=width, height=height, duration_seconds=duration)


def _read_moov(
    source: BinaryIO, start: int, end: int
) -> tuple[float | None, int | None, int | None]:
    duration: float | None = None
    width = height = None
    for kind, content, box_end in _boxes(source, start, end):
        if kind == b"mvhd":
            source.seek(content)
            data = source.read(min(box_end - content, 32))
            if data[:1] == b"\x01":
                timescale, length = struct.unpack(">IQ", data[20:32])
            else:
                timescale, length = struct.unpack(">II", data[12:20])
            if timescale:
                duration = round(length / timescale, 3)
        elif kind == b"trak" and width is None:
            width, height = _track_size(source, content, box_end)
    return duration, width, height


def _track_size(source: BinaryIO, start: int, end: int) -> tuple[int | None, int | None]:
    for kind, content, box_end in _boxes(source, start, end):
        if kind != b"tkhd":
            continue
        source.seek(content)
        data = source.read(min(box_end - content, 96))
        at = 88 if data[:1] == b"\x01" else 76  # width and height end the box, 16.16 fixed
        if len(data) < at + 8:
            return None, None
        w, h = struct.unpack(">II", data[at : at + 8])
        if w >> 16 and h >> 16:  # audio tracks have 0 × 0
            return w >> 16, h >> 16
    return None, None
