"""What each network accepts: text length as the network counts it, and media count, type and size.

Pure functions, no database and no Flask: `validate_post(text, media, account)` returns the
violations of one post variant on one account, each naming the account, the field and the
network's limit, so the posts and CSV-import services can refuse before anything is scheduled.

The rules are data (`RULES`, one `NetworkRules` per network, with the documents they come
from); how each network counts text is in `text_counting`. Mastodon instances may set their own
limits: `account.settings["max_characters"]` (the instance API's
`configuration.statuses.max_characters`, stored by the account connector), and likewise
`max_media_attachments`, `characters_reserved_per_url`, `image_size_limit`, `video_size_limit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from app.services.text_counting import (
    X_MAX_WEIGHTED,
    code_point_length,
    grapheme_length,
    hashtag_count,
    mastodon_length,
    mention_count,
    x_weighted_length,
)

MB = 1_000_000
MiB = 1024 * 1024


class MediaLike(Protocol):
    """What validation reads from a media item (app.models.Media satisfies it)."""

    id: str
    content_type: str
    size_bytes: int
    width: int | None
    height: int | None
    duration_seconds: float | None
    alt_text: str | None


class AccountLike(Protocol):
    """What validation reads from an account (app.models.SocialAccount satisfies it)."""

    id: str
    network: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class Violation:
    """One reason a post cannot go to one account: `field` is "text", "media" or "media[2]"."""

    account_id: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"account_id": self.account_id, "field": self.field, "message": self.message}


# --- the rules, as data ---------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkRules:
    """One network's documented limits. Sizes in bytes; durations in seconds."""

    name: str
    max_chars: int
    count: Callable[[str], int]
    unit: str  # how the network counts, said in messages
    max_text_bytes: int | None = None
    min_media: int = 0
    max_media: int = 4
    max_images: int = 4
    # Networks that take a carousel of images and videos mixed; others take one video alone.
    allow_mixed: bool = False
    image_types: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
    video_types: frozenset[str] = frozenset({"video/mp4", "video/quicktime"})
    max_image_bytes: int = 5 * MB
    max_gif_bytes: int | None = None  # None: same as other images
    gif_alone: bool = False  # an (animated) GIF must be the only media item
    max_video_bytes: int = 512 * MB
    min_video_seconds: float | None = None
    max_video_seconds: float | None = None
    max_alt_chars: int | None = None
    max_image_pixels: int | None = None
    aspect_ratio: tuple[float, float] | None = None  # (min, max) width / height for images
    max_hashtags: int | None = None
    max_mentions: int | None = None
    requires_text_or_media: bool = True


RULES: dict[str, NetworkRules] = {
    # app.bsky.feed.post (maxGraphemes 300, maxLength 3000), app.bsky.embed.images (≤4, blob
    # maxSize 1,000,000), app.bsky.embed.video (video/mp4, maxSize 100,000,000; 3 minutes).
    "bluesky": NetworkRules(
        name="Bluesky",
        max_chars=300,
        count=grapheme_length,
        unit="characters (grapheme clusters)",
        max_text_bytes=3000,
        max_media=4,
        max_images=4,
        video_types=frozenset({"video/mp4"}),
        max_image_bytes=1 * MB,
        max_video_bytes=100 * MB,
        max_video_seconds=180,
        max_alt_chars=2000,
    ),
    # X media: up to 4 photos, or 1 animated GIF, or 1 video; photos 5 MB, GIFs 15 MB, video
    # 512 MB and 140 s for ordinary accounts; alt text 1,000 characters.
    "x": NetworkRules(
        name="X",
        max_chars=X_MAX_WEIGHTED,
        count=x_weighted_length,
        unit="weighted characters (URLs count 23, CJK and emoji 2)",
        max_media=4,
        max_images=4,
        max_image_bytes=5 * MB,
        max_gif_bytes=15 * MB,
        gif_alone=True,
        max_video_bytes=512 * MB,
        min_video_seconds=0.5,
        max_video_seconds=140,
        max_alt_chars=1000,
    ),
    # Mastodon defaults (v4): 500 characters, 4 attachments, images 16 MiB, videos 99 MiB,
    # descriptions 1,500; a video cannot share a post with images. Instances may change these.
    "mastodon": NetworkRules(
        name="Mastodon",
        max_chars=500,
        count=mastodon_length,
        unit="characters (URLs count 23)",
        max_media=4,
        max_images=4,
        max_image_bytes=16 * MiB,
        max_video_bytes=99 * MiB,
        max_alt_chars=1500,
    ),
    # LinkedIn Posts API: commentary 3,000; Images API JPG/PNG/GIF up to 36,152,320 pixels,
    # multi-image posts up to 20; Videos API MP4, 75 KB–500 MB, 3 s–30 min; one video alone.
    "linkedin": NetworkRules(
        name="LinkedIn",
        max_chars=3000,
        count=code_point_length,
        unit="characters",
        max_media=20,
        max_images=20,
        image_types=frozenset({"image/jpeg", "image/png", "image/gif"}),
        video_types=frozenset({"video/mp4"}),
        max_image_bytes=20 * MB,
        max_image_pixels=36_152_320,
        max_video_bytes=500 * MB,
        min_video_seconds=3,
        max_video_seconds=30 * 60,
        max_alt_chars=4086,
    ),
    # Facebook Pages: a post's message up to 63,206 characters; photos under 4 MB (JPEG, PNG,
    # GIF, WebP), up to 10 in one post; one video alone (we cap uploads at 1 GB, 240 min).
    "facebook": NetworkRules(
        name="Facebook",
        max_chars=63_206,
        count=code_point_length,
        unit="characters",
        max_media=10,
        max_images=10,
        max_image_bytes=4 * MB,
        max_video_bytes=1000 * MB,
        max_video_seconds=240 * 60,
    ),
    # Instagram Content Publishing API: caption 2,200 characters, 30 hashtags, 20 @-mentions;
    # at least one item, carousels of up to 10 images and videos mixed; images JPEG only, 8 MB,
    # aspect ratio 4:5 to 1.91:1; videos MP4/MOV, 300 MB, 3 s to 15 min.
    "instagram": NetworkRules(
        name="Instagram",
        max_chars=2200,
        count=code_point_length,
        unit="characters",
        min_media=1,
        max_media=10,
        max_images=10,
        allow_mixed=True,
        image_types=frozenset({"image/jpeg"}),
        max_image_bytes=8 * MB,
        max_video_bytes=300 * MB,
        min_video_seconds=3,
        max_video_seconds=15 * 60,
        aspect_ratio=(4 / 5, 1.91),
        max_hashtags=30,
        max_mentions=20,
        requires_text_or_media=False,  # min_media already says it
    ),
}


def rules_for(account: AccountLike) -> NetworkRules | None:
    """The account's network rules, with the instance's own limits where it has them."""
    rules = RULES.get(account.network)
    if rules is None or account.network != "mastodon":
        return rules
    settings = account.settings or {}
    overrides: dict[str, Any] = {}
    if _positive_int(settings.get("max_characters")):
        overrides["max_chars"] = int(settings["max_characters"])
    if _positive_int(settings.get("characters_reserved_per_url")):
        url_length = int(settings["characters_reserved_per_url"])
        overrides["count"] = lambda text: mastodon_length(text, url_length)
        overrides["unit"] = f"characters (URLs count {url_length})"
    if _positive_int(settings.get("max_media_attachments")):
        overrides["max_media"] = overrides["max_images"] = int(settings["max_media_attachments"])
    if _positive_int(settings.get("image_size_limit")):
        overrides["max_image_bytes"] = int(settings["image_size_limit"])
    if _positive_int(settings.get("video_size_limit")):
        overrides["max_video_bytes"] = int(settings["video_size_limit"])
    return replace(rules, **overrides) if overrides else rules


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def text_length(text: str, account: AccountLike) -> int | None:
    """The text's length as the account's network counts it (None for an unknown network)."""
    rules = rules_for(account)
    return rules.count(text or "") if rules else None


# --- validation -----------------------------------------------------------------------------


def validate_post(text: str, media: Sequence[MediaLike], account: AccountLike) -> list[Violation]:
    """Every reason this text and media cannot be published on this account (empty: fine)."""
    rules = rules_for(account)
    if rules is None:
        return [
            Violation(account.id, "account", f"No content rules for network '{account.network}'.")
        ]
    violations = _text_violations(text or "", rules, account.id)
    violations += _media_violations(list(media), rules, account.id)
    if rules.requires_text_or_media and not (text or "").strip() and not media:
        violations.append(
            Violation(account.id, "text", f"{rules.name} needs text or at least one media item.")
        )
    return violations


def _text_violations(text: str, rules: NetworkRules, account_id: str) -> list[Violation]:
    found: list[Violation] = []
    length = rules.count(text)
    if length > rules.max_chars:
        found.append(
            Violation(
                account_id,
                "text",
                f"{rules.name} allows at most {rules.max_chars} {rules.unit}; "
                f"this text has {length}.",
            )
        )
    if rules.max_text_bytes is not None:
        size = len(text.encode("utf-8"))
        if size > rules.max_text_bytes:
            found.append(
                Violation(
                    account_id,
                    "text",
                    f"{rules.name} allows at most {rules.max_text_bytes} bytes of UTF-8 text; "
                    f"this text has {size}.",
                )
            )
    for count_of, limit, what in (
        (hashtag_count, rules.max_hashtags, "hashtags"),
        (mention_count, rules.max_mentions, "@-mentions"),
    ):
        if limit is not None:
            count = count_of(text)
            if count > limit:
                found.append(
                    Violation(
                        account_id,
                        "text",
                        f"{rules.name} allows at most {limit} {what}; this text has {count}.",
                    )
                )
    return found


def _kind(item: MediaLike) -> str:
    content_type = (item.content_type or "").lower()
    if content_type == "image/gif":
        return "gif"
    if content_type.startswith("image/"):
        return "image"
    if content_type.startswith("video/"):
        return "video"
    return "other"


def _mb(size: int) -> str:
    if size >= MB:
        return f"{size / MB:g} MB"
    return f"{size / 1000:g} KB"


def _media_violations(
    media: list[MediaLike], rules: NetworkRules, account_id: str
) -> list[Violation]:
    found: list[Violation] = []

    def add(field_name: str, message: str) -> None:
        found.append(Violation(account_id, field_name, f"{rules.name}: {message}"))

    kinds = [_kind(item) for item in media]
    videos = kinds.count("video")
    gifs = kinds.count("gif")
    images = kinds.count("image") + gifs

    if len(media) < rules.min_media:
        add("media", f"a post needs at least {rules.min_media} media item(s).")
    if len(media) > rules.max_media:
        add("media", f"at most {rules.max_media} media items per post; this post has {len(media)}.")
    elif images > rules.max_images:
        add("media", f"at most {rules.max_images} images per post; this post has {images}.")
    if not rules.allow_mixed:
        if videos > 1:
            add("media", f"at most 1 video per post; this post has {videos}.")
        if videos and (images or gifs):
            add("media", "a video cannot be combined with images in one post.")
        if rules.gif_alone and gifs and len(media) > 1:
            add("media", "an animated GIF must be the only media item of a post.")

    for index, (item, kind) in enumerate(zip(media, kinds, strict=True)):
        found += _item_violations(item, kind, rules, account_id, f"media[{index}]")
    return found


def _item_violations(
    item: MediaLike, kind: str, rules: NetworkRules, account_id: str, where: str
) -> list[Violation]:
    found: list[Violation] = []

    def add(message: str) -> None:
        found.append(Violation(account_id, where, f"{rules.name}: {message}"))

    if getattr(item, "deleted_at", None) is not None:
        add("this media item was deleted.")
        return found
    content_type = item.content_type
    size = item.size_bytes or 0
    if kind in ("image", "gif"):
        if content_type not in rules.image_types:
            allowed = ", ".join(sorted(rules.image_types))
            add(f"images must be {allowed}; this one is {content_type}.")
        limit = rules.max_gif_bytes if kind == "gif" and rules.max_gif_bytes else None
        limit = limit or rules.max_image_bytes
        if size > limit:
            add(f"images may be at most {_mb(limit)}; this one is {_mb(size)}.")
        width, height = item.width, item.height
        if width and height:
            if rules.max_image_pixels and width * height > rules.max_image_pixels:
                add(
                    f"images may have at most {rules.max_image_pixels:,} pixels; "
                    f"this one is {width}×{height}."
                )
            if rules.aspect_ratio:
                low, high = rules.aspect_ratio
                ratio = width / height
                if not low - 0.005 <= ratio <= high + 0.005:
                    add(
                        f"image aspect ratio must be between 4:5 and 1.91:1; "
                        f"this one is {width}×{height}."
                    )
    elif kind == "video":
        if content_type not in rules.video_types:
            allowed = ", ".join(sorted(rules.video_types))
            add(f"videos must be {allowed}; this one is {content_type}.")
        if size > rules.max_video_bytes:
            add(f"videos may be at most {_mb(rules.max_video_bytes)}; this one is {_mb(size)}.")
        duration = item.duration_seconds
        if duration is not None:
            if rules.max_video_seconds is not None and duration > rules.max_video_seconds:
                add(
                    f"videos may last at most {rules.max_video_seconds:g} s; "
                    f"this one lasts {duration:g} s."
                )
            if rules.min_video_seconds is not None and duration < rules.min_video_seconds:
                add(
                    f"videos must last at least {rules.min_video_seconds:g} s; "
                    f"this one lasts {duration:g} s."
                )
    else:
        add(f"cannot publish media of type {content_type}.")
    alt_text = item.alt_text
    if rules.max_alt_chars is not None and alt_text:
        length = grapheme_length(alt_text)
        if length > rules.max_alt_chars:
            add(f"alt text may be at most {rules.max_alt_chars} characters; this one has {length}.")
    return found
