"""Bluesky's text rules, as pure functions: the deterministic record keys that make a retried
publish land on the record it may already have made (`record_key`, `part_key`), threads cut at
Bluesky's limits (`thread_parts`), and the rich-text facets of links, mentions and hashtags at
their UTF-8 byte offsets (`facets_of`). The connector (app/networks/bluesky.py) sends them."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime
from typing import Any

import regex

MAX_GRAPHEMES = 300
MAX_TEXT_BYTES = 3000
MAX_THREAD_PARTS = 25


# -- record keys ---------------------------------------------------------------------------------

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# With no scheduled time, the key's seconds come from its hash, within a year from here.
_KEY_EPOCH = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())


def _tid(value: int) -> str:
    return "".join(_TID_ALPHABET[(value >> (5 * (12 - i))) & 31] for i in range(13))


def _tid_value(tid: str) -> int:
    value = 0
    for char in tid:
        value = (value << 5) | _TID_ALPHABET.index(char)
    return value


def record_key(idempotency_key: str, scheduled_for: datetime | None = None) -> str:
    """A TID (53 bits of microseconds since 1970, 10 bits of clock id) made from the key alone:
    the same delivery always writes under the same record key. The seconds are the scheduled
    time's, so records sort where they belong; the microseconds and the clock id (30 bits)
    come from the key's hash, so two posts scheduled in the same second get different keys."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    if scheduled_for is not None:
        seconds = int(scheduled_for.timestamp())
    else:
        seconds = _KEY_EPOCH + int.from_bytes(digest[8:12], "big") % (366 * 86400)
    micros = int.from_bytes(digest[0:4], "big") % 1_000_000
    clock = int.from_bytes(digest[4:6], "big") & 0x3FF
    return _tid(((seconds * 1_000_000 + micros) << 10) | clock)


def part_key(root_key: str, index: int) -> str:
    """The key of part `index` of a thread: the root's TID `index` microseconds later."""
    return root_key if index == 0 else _tid(_tid_value(root_key) + (index << 10))


# -- text: threads and facets ---------------------------------------------------------------------

_GRAPHEME = regex.compile(r"\X")


def thread_parts(text: str) -> list[str]:
    """`text` cut into posts of at most 300 graphemes and 3,000 UTF-8 bytes, at the last
    whitespace before the limit (inside a word only when a word is longer than a post)."""
    clusters = _GRAPHEME.findall(text)
    parts: list[str] = []
    start = 0
    while start < len(clusters):
        end, size = start, 0
        while end < len(clusters) and end - start < MAX_GRAPHEMES:
            size += len(clusters[end].encode())
            if size > MAX_TEXT_BYTES:
                break
            end += 1
        if end < len(clusters):
            cut = end
            while cut > start and not clusters[cut].isspace():
                cut -= 1
            end = cut if cut > start else end
        part = "".join(clusters[start:end]).strip()
        if part:
            parts.append(part)
        start = end
        while start < len(clusters) and clusters[start].isspace():
            start += 1
    return parts[:MAX_THREAD_PARTS] if parts else [text]


# Linear-time patterns: a URL is the run of non-space characters after its scheme, trailing
# punctuation trimmed; a mention is a domain-shaped handle after "@" at a word start; a tag is
# the run after "#" at a word start, trailing punctuation trimmed (what the Bluesky apps do).
_URL = regex.compile(r"https?://[^\s]++")
_MENTION = regex.compile(r"(?<![\w@])@([a-zA-Z0-9][a-zA-Z0-9.-]*+)")
_HANDLE_LABEL = regex.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_TAG = regex.compile(r"(?<!\S)[#＃]([^\s#＃]++)")
# At most this many distinct handles are resolved per post (each is a request to the PDS).
MAX_MENTIONS = 20


_URL_TRAILING = set(".,;:!?'\"”’»…")


def _trim_url(url: str) -> str:
    """A URL without the punctuation of the sentence around it ("see https://x.org/a.")."""
    end = len(url)
    while end:
        char = url[end - 1]
        # A closing bracket belongs to a URL that opened one (Wikipedia links).
        if char in ")]":
            head = url[: end - 1]
            if head.count("(" if char == ")" else "[") > head.count(char):
                break
        elif char not in _URL_TRAILING:
            break
        end -= 1
    return url[:end]


def _trim_tag(tag: str) -> str:
    """A tag without trailing punctuation ("#relais!" tags "relais")."""
    end = len(tag)
    while end and unicodedata.category(tag[end - 1]).startswith("P"):
        end -= 1
    return tag[:end]


def _is_handle(value: str) -> bool:
    labels = value.split(".")
    return len(labels) >= 2 and all(_HANDLE_LABEL.fullmatch(label) for label in labels)


def facets_of(text: str, resolve_handle: Any) -> list[dict[str, Any]]:
    """Link, mention and tag facets of `text`, with byte offsets into its UTF-8 encoding.
    `resolve_handle(handle)` gives a DID, or None to leave the mention as plain text."""
    if len(text) > MAX_TEXT_BYTES:
        return []  # longer than any post: the PDS refuses it, facets or not
    spans: list[tuple[int, int, dict[str, Any]]] = []
    resolved = 0
    for match in _URL.finditer(text):
        url = _trim_url(match.group(0))
        if len(url) > len("https://"):
            spans.append(
                (match.start(), match.start() + len(url), {"$type": f"{_FACET}#link", "uri": url})
            )
    for match in _MENTION.finditer(text):
        handle = match.group(1).rstrip(".-").lower()
        if not _is_handle(handle) or _inside(spans, match.start()) or resolved >= MAX_MENTIONS:
            continue
        resolved += 1
        did = resolve_handle(handle)
        if did:
            end = match.start() + 1 + len(handle)
            spans.append((match.start(), end, {"$type": f"{_FACET}#mention", "did": did}))
    for match in _TAG.finditer(text):
        tag = _trim_tag(match.group(1))
        if not tag or tag.isdigit() or len(tag) > 64 or _inside(spans, match.start()):
            continue
        end = match.start() + 1 + len(tag)
        spans.append((match.start(), end, {"$type": f"{_FACET}#tag", "tag": tag}))
    spans.sort(key=lambda span: span[0])
    facets, position, offset = [], 0, 0
    for start, end, feature in spans:
        offset += len(text[position:start].encode())
        length = len(text[start:end].encode())
        facets.append(
            {"index": {"byteStart": offset, "byteEnd": offset + length}, "features": [feature]}
        )
        offset += length
        position = end
    return facets


_FACET = "app.bsky.richtext.facet"


def _inside(spans: list[tuple[int, int, dict[str, Any]]], index: int) -> bool:
    return any(start <= index < end for start, end, _ in spans)
