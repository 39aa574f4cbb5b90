"""Per-network content rules: counting as each network counts, and media limits."""

from __future__ import annotations

import unicodedata
from types import SimpleNamespace
from typing import Any

import pytest
import regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.services.content_rules import RULES, text_length, validate_post
from app.services.text_counting import (
    X_WEIGHT_RANGES,
    grapheme_length,
    mastodon_length,
    x_weighted_length,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦, 7 code points
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"  # 👍🏽 with a skin tone
FLAG_FR = "\U0001f1eb\U0001f1f7"
HEART_VS16 = "\u2764\ufe0f"
KEYCAP_ONE = "1\ufe0f\u20e3"
E_ACUTE_DECOMPOSED = "e\u0301"
Q_ACUTE = "q\u0301"  # no precomposed form: stays two code points after NFC
LONG_URL = "https://example.com/" + "a" * 200


def account(network: str, **settings: Any) -> SimpleNamespace:
    return SimpleNamespace(id=f"sac_{network}", network=network, settings=settings)


def medium(
    content_type: str = "image/jpeg",
    size: int = 100_000,
    width: int | None = 1000,
    height: int | None = 1000,
    duration: float | None = None,
    alt_text: str | None = None,
    **extra: Any,
) -> SimpleNamespace:
    return SimpleNamespace(
        id="med_x",
        content_type=content_type,
        size_bytes=size,
        width=width,
        height=height,
        duration_seconds=duration,
        alt_text=alt_text,
        **extra,
    )


def video(size: int = 5_000_000, duration: float = 10, content_type: str = "video/mp4"):
    return medium(content_type, size=size, duration=duration)


def fields(violations) -> list[str]:
    return [v.field for v in violations]


# --- counting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("hello", 5),
        (FAMILY, 1),
        (THUMBS_MEDIUM, 1),
        (FLAG_FR + FLAG_FR, 2),
        (HEART_VS16, 1),
        (KEYCAP_ONE, 1),
        (E_ACUTE_DECOMPOSED, 1),
        ("a\u0301\u0302\u0303", 1),  # stacked combining marks
        ("\u1100\u1161\u11a8", 1),  # Hangul jamo L V T: one syllable
        ("日本語", 3),
        ("\r\n", 1),
    ],
)
def test_grapheme_length(text: str, expected: int) -> None:
    assert grapheme_length(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 280, 280),
        ("日本語", 6),  # CJK weighs 2
        ("한국어", 6),
        ("カタカナ", 8),
        ("Привет", 6),  # Cyrillic is in the 0–4351 range
        ("\u2014\u2019", 2),  # em dash and right quote: general punctuation ranges
        ("\u2122", 2),  # ™ is outside every v3 range
        (FAMILY, 2),  # a whole ZWJ sequence is one emoji
        (THUMBS_MEDIUM, 2),
        (FLAG_FR, 2),
        (HEART_VS16, 2),
        (KEYCAP_ONE, 2),
        (E_ACUTE_DECOMPOSED, 1),  # NFC first: é
        (Q_ACUTE, 2),  # each code point weighs 1
        (LONG_URL, 23),
        ("see " + LONG_URL + ".", 4 + 23 + 1),  # trailing punctuation is not the URL's
        ("www.example.com/path", 23),
        ("http://a.example https://b.example", 23 + 1 + 23),
    ],
)
def test_x_weighted_length(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        (LONG_URL, 23),
        ("go " + LONG_URL, 26),
        ("www.example.com", 15),  # Mastodon only shortens URLs with a scheme
        ("@alice@very.long.instance.example hi", len("@alice hi")),
        ("@alice hi", 9),
        (FAMILY, 1),
        ("mail me: bob@example.com", 24),  # an e-mail address is no mention
    ],
)
def test_mastodon_length(text: str, expected: int) -> None:
    assert mastodon_length(text) == expected


def test_text_length_by_account_and_unknown_network() -> None:
    assert text_length(FAMILY, account("bluesky")) == 1
    assert text_length(FAMILY, account("x")) == 2
    assert text_length(FAMILY, account("linkedin")) == 7
    assert text_length("x", account("myspace")) is None


# --- text limits per network -----------------------------------------------------------------


def test_bluesky_counts_graphemes_not_code_points() -> None:
    assert validate_post(E_ACUTE_DECOMPOSED * 300, [], account("bluesky")) == []
    [violation] = validate_post("a" * 301, [], account("bluesky"))
    assert violation.field == "text"
    assert violation.account_id == "sac_bluesky"
    assert "Bluesky" in violation.message and "300" in violation.message
    assert "301" in violation.message


def test_bluesky_byte_limit_catches_long_emoji_sequences() -> None:
    # 130 families = 130 graphemes, but 25 bytes each: over the 3,000-byte lexicon limit.
    [violation] = validate_post(FAMILY * 130, [], account("bluesky"))
    assert "3000 bytes" in violation.message


def test_x_limit_is_weighted() -> None:
    assert validate_post("日" * 140, [], account("x")) == []
    [violation] = validate_post("日" * 141, [], account("x"))
    assert "X allows at most 280" in violation.message and "282" in violation.message
    # 10 URLs of 200+ characters are 10 × 23 + 9 spaces.
    assert validate_post(" ".join([LONG_URL] * 10), [], account("x")) == []


def test_mastodon_default_and_instance_limit() -> None:
    assert validate_post("a" * 500, [], account("mastodon")) == []
    [violation] = validate_post("a" * 501, [], account("mastodon"))
    assert "Mastodon allows at most 500" in violation.message
    assert validate_post("a" * 501, [], account("mastodon", max_characters=5000)) == []
    [violation] = validate_post("a" * 5001, [], account("mastodon", max_characters=5000))
    assert "5000" in violation.message
    # A nonsense override is ignored rather than trusted.
    assert validate_post("a" * 501, [], account("mastodon", max_characters="lots"))


def test_mastodon_url_counts_23_or_instance_value() -> None:
    text = "a" * 476 + " " + LONG_URL  # 476 + 1 + 23 = 500
    assert validate_post(text, [], account("mastodon")) == []
    assert validate_post(text, [], account("mastodon", characters_reserved_per_url=30))


@pytest.mark.parametrize(
    ("network", "limit"),
    [("linkedin", 3000), ("facebook", 63_206), ("instagram", 2200)],
)
def test_code_point_limits(network: str, limit: int) -> None:
    media = [medium()] if network == "instagram" else []
    assert validate_post("a" * limit, media, account(network)) == []
    [violation] = validate_post("a" * (limit + 1), media, account(network))
    assert str(limit) in violation.message
    assert RULES[network].name in violation.message


def test_instagram_hashtags_mentions_and_required_media() -> None:
    text = " ".join(f"#tag{i}" for i in range(31))
    violations = validate_post(text, [medium()], account("instagram"))
    assert [v.message for v in violations] == [
        "Instagram allows at most 30 hashtags; this text has 31."
    ]
    mentions = " ".join(f"@user{i}" for i in range(21))
    assert "20 @-mentions" in validate_post(mentions, [medium()], account("instagram"))[0].message
    [violation] = validate_post("caption", [], account("instagram"))
    assert violation.field == "media" and "at least 1" in violation.message


def test_empty_post_is_refused_where_text_is_needed() -> None:
    [violation] = validate_post("   ", [], account("mastodon"))
    assert violation.field == "text"
    assert validate_post("", [medium()], account("bluesky")) == []


def test_unknown_network() -> None:
    [violation] = validate_post("hi", [], account("myspace"))
    assert violation.field == "account"


# --- media limits per network ----------------------------------------------------------------


def test_bluesky_media() -> None:
    bsky = account("bluesky")
    assert validate_post("", [medium()] * 4, bsky) == []
    assert fields(validate_post("", [medium()] * 5, bsky)) == ["media"]
    big = validate_post("", [medium(), medium(size=1_000_001)], bsky)
    assert fields(big) == ["media[1]"] and "1 MB" in big[0].message
    mixed = validate_post("", [medium(), video()], bsky)
    assert "cannot be combined" in mixed[0].message
    mov = validate_post("", [video(content_type="video/quicktime")], bsky)
    assert fields(mov) == ["media[0]"] and "video/mp4" in mov[0].message
    long_video = validate_post("", [video(duration=181)], bsky)
    assert "180 s" in long_video[0].message


def test_x_media() -> None:
    x = account("x")
    assert validate_post("hi", [medium(content_type="image/png")] * 4, x) == []
    assert validate_post("hi", [video(duration=140)], x) == []
    assert "at most 1 video" in validate_post("hi", [video(), video()], x)[0].message
    gif_with_photo = validate_post("hi", [medium("image/gif"), medium()], x)
    assert "only media item" in gif_with_photo[0].message
    assert validate_post("hi", [medium("image/gif", size=14_000_000)], x) == []
    assert fields(validate_post("hi", [medium(size=6_000_000)], x)) == ["media[0]"]
    alt = validate_post("hi", [medium(alt_text="a" * 1001)], x)
    assert "alt text" in alt[0].message and "1000" in alt[0].message


def test_mastodon_media_and_instance_overrides() -> None:
    assert fields(validate_post("hi", [medium()] * 5, account("mastodon"))) == ["media"]
    assert validate_post("hi", [medium()] * 5, account("mastodon", max_media_attachments=6)) == []
    big = medium(size=20 * 1024 * 1024)
    assert fields(validate_post("hi", [big], account("mastodon"))) == ["media[0]"]
    roomy = account("mastodon", image_size_limit=32 * 1024 * 1024)
    assert validate_post("hi", [big], roomy) == []


def test_linkedin_media() -> None:
    li = account("linkedin")
    assert validate_post("hi", [medium()] * 20, li) == []
    assert fields(validate_post("hi", [medium()] * 21, li)) == ["media"]
    webp = validate_post("hi", [medium("image/webp")], li)
    assert fields(webp) == ["media[0]"] and "LinkedIn" in webp[0].message
    huge = validate_post("hi", [medium(width=10_000, height=5_000)], li)
    assert "pixels" in huge[0].message
    short = validate_post("hi", [video(duration=2)], li)
    assert "at least 3 s" in short[0].message


def test_instagram_media() -> None:
    ig = account("instagram")
    carousel = [medium(), video()] * 5
    assert validate_post("hi", carousel, ig) == []  # mixed carousel of 10 is fine
    assert fields(validate_post("hi", carousel + [medium()], ig)) == ["media"]
    png = validate_post("hi", [medium("image/png")], ig)
    assert "image/jpeg" in png[0].message
    tall = validate_post("hi", [medium(width=1000, height=2000)], ig)
    assert "aspect ratio" in tall[0].message
    assert validate_post("hi", [medium(width=1080, height=1350)], ig) == []  # exactly 4:5


def test_facebook_media() -> None:
    fb = account("facebook")
    assert validate_post("hi", [medium()] * 10, fb) == []
    assert fields(validate_post("hi", [medium(size=5_000_000)], fb)) == ["media[0]"]


def test_deleted_and_unknown_media() -> None:
    from datetime import UTC, datetime

    gone = medium(deleted_at=datetime.now(UTC))
    assert "deleted" in validate_post("hi", [gone], account("x"))[0].message
    pdf = validate_post("hi", [medium("application/pdf")], account("x"))
    assert "application/pdf" in pdf[0].message


def test_violation_as_dict() -> None:
    [violation] = validate_post("a" * 301, [], account("bluesky"))
    assert violation.as_dict() == {
        "account_id": "sac_bluesky",
        "field": "text",
        "message": violation.message,
    }


def test_works_with_the_real_models() -> None:
    from app.models import Media, SocialAccount

    account_row = SocialAccount(id="acc_1", network="mastodon", settings={"max_characters": 10})
    media_row = Media(
        id="med_1", content_type="video/mp4", size_bytes=1000, width=640, height=360,
        duration_seconds=5.0, alt_text=None, deleted_at=None,
    )  # fmt: skip
    violations = validate_post("a" * 11, [media_row, media_row], account_row)
    assert fields(violations) == ["text", "media"]
    assert all(v.account_id == "acc_1" for v in violations)


# --- the linear counting agrees with the patterns it replaced --------------------------------
# The URL, mention and grapheme scans were rewritten to run in linear time (the adversarial
# inputs are in tests/test_text_check_cost.py). The patterns they replaced are kept here as the
# reference: on short texts, where their backtracking costs nothing, both must count alike.

_REFERENCE_URL = regex.compile(
    r"(?:https?://|(?<![\w.@/])www\.)[^\s<>\"]+?(?=[.,;:!?'\")\]]*(?:\s|$))"
)
_REFERENCE_HTTP_URL = regex.compile(r"https?://[^\s<>\"]+?(?=[.,;:!?'\")\]]*(?:\s|$))")
_REFERENCE_MENTION = regex.compile(
    r"(?<![\w/@])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+[\w]+", regex.IGNORECASE
)
_REFERENCE_EMOJI = regex.compile(r"\p{Emoji}")
_REFERENCE_EMOJI_PRESENTATION = regex.compile(r"\p{Emoji_Presentation}|\p{Regional_Indicator}")


def _reference_x_plain(text: str) -> int:
    total = 0
    for cluster in regex.findall(r"\X", text):
        if _REFERENCE_EMOJI_PRESENTATION.search(cluster) or (
            _REFERENCE_EMOJI.search(cluster) and ("\ufe0f" in cluster or "\u20e3" in cluster)
        ):
            total += 2
        else:
            total += sum(
                1 if any(lo <= ord(c) <= hi for lo, hi in X_WEIGHT_RANGES) else 2 for c in cluster
            )
    return total


def _reference_x(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    total = position = 0
    for match in _REFERENCE_URL.finditer(text):
        total += _reference_x_plain(text[position : match.start()]) + 23
        position = match.end()
    return total + _reference_x_plain(text[position:])


def _reference_mastodon(text: str) -> int:
    countable = _REFERENCE_HTTP_URL.sub("x" * 23, text)
    countable = _REFERENCE_MENTION.sub(r"@\1", countable)
    return len(regex.findall(r"\X", countable))


# Pieces that start, end, join or break URLs, mentions, emoji and clusters.
_PIECES = [
    "http://",
    "https://",
    "www.",
    "a",
    "B",
    "1",
    "_",
    "-",
    ".",
    ",",
    ";",
    ":",
    "!",
    "?",
    "'",
    '"',
    ")",
    "]",
    "(",
    "<",
    ">",
    "/",
    "@",
    "#",
    "&",
    " ",
    "\n",
    "\u3000",
    "é",
    "e\u0301",
    "\u0301",
    "\u0316",
    "日",
    "\U0001f1eb",
    "\U0001f1f7",
    "\u2764",
    "\ufe0f",
    "\u20e3",
    "\u200d",
    "\U0001f468",
    "\U0001f3fd",
    "\u0f73",
    "ſ",
    "\u212a",
    "\u1100",
    "\u1161",
]


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=24).map("".join))
@example("@a.@bb hi @a-b@c.d. @_x@y-.z @a@@b.c x@y@z.w @.a@bb @-b@cc @a@b @c@d.")
@example('see (http://a.example/x). "https://b.example/y", http://c<d "www.e.f". www..g')
@example("xhttp://a @http://b /www.c .www.d http:// http://\u3000http://e\u3000")
@example("\U0001f1eb\U0001f1f7\U0001f1eb\u0301\U0001f1f7\U0001f1eb\U0001f1f7\U0001f1eb")
def test_counts_match_the_patterns_they_replaced(text: str) -> None:
    assert x_weighted_length(text) == _reference_x(text)
    assert mastodon_length(text) == _reference_mastodon(text)
    assert grapheme_length(text) == len(regex.findall(r"\X", text))


def test_no_single_code_point_emoji_weighs_one_on_x() -> None:
    # x_weighted_length counts a cluster of one code point by its weight alone, which is right
    # only if every emoji presentation character and regional indicator lies outside the
    # weight-1 ranges.
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for char in _REFERENCE_EMOJI_PRESENTATION.findall(every):
        assert not any(lo <= ord(char) <= hi for lo, hi in X_WEIGHT_RANGES), hex(ord(char))


@pytest.mark.parametrize(
    "text",
    [FLAG_FR[0] * k for k in range(12)]
    + ["a" + FLAG_FR[0] * 5 + "\u0301" + FLAG_FR[0] * 4, "\u0600" + FLAG_FR * 3 + "\u0301"],
)
def test_runs_of_regional_indicators_pair_up_as_before(text: str) -> None:
    # Long runs are cut between pairs before segmenting (see text_counting._graphemes).
    assert grapheme_length(text) == len(regex.findall(r"\X", text))
