"""Text length as each network counts it, in time linear in the text.

Pure functions, no database and no Flask; `content_rules` says which count and which limit
applies to which network.

How each network counts text (this is where naive `len()` is wrong):
- Bluesky: grapheme clusters (user-perceived characters; an emoji ZWJ family is 1), at most 300,
  and at most 3,000 UTF-8 bytes (the `app.bsky.feed.post` lexicon says both).
- X: twitter-text config v3 "weighted length": the text is NFC-normalised, every URL counts 23,
  every emoji sequence counts 2, a code point in the v3 ranges (Latin, Greek, Cyrillic, Hebrew,
  Arabic, Indic…, general punctuation) counts 1 and any other (CJK, Hangul, kana…) counts 2.
- Mastodon: grapheme clusters of the text where every http(s) URL counts 23 and a remote
  mention `@user@domain` counts as `@user` (what the server's StatusLengthValidator does). The
  instance may reserve another length per URL (`content_rules.rules_for` reads it).
- LinkedIn, Facebook, Instagram: Unicode code points (what their APIs document as characters).

Our URL matching is simpler than twitter-text's: it counts `http(s)://…` and `www.…` links and
not bare domains such as `example.com`, which X also shortens. Such a text is counted longer on X
than it is (never shorter), so a post we accept is never refused for length by X.

Each count takes time linear in the text, whatever the text (see the notes on `_url_spans`,
`_graphemes` and `_nfc`; `benchmarks/text_checks_bench.py` times them).
"""

from __future__ import annotations

import unicodedata

import regex

_GRAPHEME = regex.compile(r"\X")

# URLs and mentions are found in time linear in the text (a post is up to 70,000 characters, and
# a CSV import checks every row on every account): a URL is the greedy run of the characters a
# URL may hold, and the punctuation it ends with is trimmed afterwards (`_url_spans`). A lazy
# pattern with a look-ahead over trailing punctuation, which this replaces, re-read the rest of
# the run at every character: "http://a" and 70,000 dots took half a minute.
_URL_START = regex.compile(r"https?://|(?<![\w.@/])www\.")
_HTTP_URL_START = regex.compile(r"https?://")
_URL_RUN = regex.compile(r'[^\s<>"]*+')
_SPACE = regex.compile(r"\s")
# Trailing punctuation is not part of a URL in running text ("see https://a.example/x.").
_URL_TRAILING = frozenset(".,;:!?'\")]")
# Mastodon's Account::MENTION_RE, simplified: a remote mention counts only its local part. The
# user part is one possessive run (first and last characters checked around it) rather than the
# nested quantifiers of the Ruby original, which backtrack cubically on "@aaaa….".
_MASTODON_MENTION = regex.compile(
    r"(?<![\w/@])@((?=[a-z0-9_])[a-z0-9_.-]++(?<=[a-z0-9_]))@[\w.-]+\w", regex.IGNORECASE
)
# Hashtags and @-mentions, for networks that limit how many a post has.
_HASHTAG = regex.compile(r"(?<![\w&])#\w++")
_MENTION = regex.compile(r"(?<![\w@])@[\w.]++")

# twitter-text config v3: weight 100 (one character) in these code point ranges, else 200.
X_WEIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
X_URL_LENGTH = 23
X_MAX_WEIGHTED = 280

_REGIONAL_INDICATOR = regex.compile(r"\p{Regional_Indicator}")
_REGIONAL_INDICATOR_RUN = regex.compile(r"\p{Regional_Indicator}{3,}+")
# A cluster with an emoji-presentation character or a regional indicator, or an emoji
# character made one by VS16 or the keycap mark (see _is_emoji_cluster).
_EMOJI_CLUSTER = regex.compile(
    r"[\p{Emoji_Presentation}\p{Regional_Indicator}]|^(?=.*\p{Emoji}).*[\ufe0f\u20e3]", regex.DOTALL
)
# Eight characters in a row that decompose into combining marks only: the marks, and three
# Tibetan vowels of class 0 made of two marks (see _nfc).
_MARK_RUN = regex.compile(r"[\P{Canonical_Combining_Class=Not_Reordered}\u0f73\u0f75\u0f81]{8}")
# A character without which no cluster is an emoji.
_EMOJI_HINT = regex.compile(r"[\p{Emoji_Presentation}\p{Regional_Indicator}\ufe0f\u20e3]")
# The code points outside X's weight-100 ranges (each weighs 2).
_X_HEAVY = regex.compile(
    "[^" + "".join(rf"\U{lo:08x}-\U{hi:08x}" for lo, hi in X_WEIGHT_RANGES) + "]"
)


def _url_spans(text: str, starts: regex.Pattern[str]) -> list[tuple[int, int]]:
    """Where the URLs of `text` are, as (start, end) offsets, in one pass.

    A URL runs from its start (`http://`, `https://`, `www.` for X) over the characters a URL
    may hold (anything but white space, `<`, `>` and `"`), less the punctuation it ends with
    (at least one character is kept after the scheme). It counts only when what follows that
    punctuation (a closing quote may continue it) is white space or the end of the text, as in
    running text; "http://a.example<b>" holds no URL.
    """
    spans: list[tuple[int, int]] = []
    size = len(text)
    position = 0
    while (found := starts.search(text, position)) is not None:
        body = found.end()
        end = _URL_RUN.match(text, body).end()  # type: ignore[union-attr]
        after = end
        while after < size and text[after] in _URL_TRAILING:
            after += 1
        if end > body and (after == size or _SPACE.match(text, after)):
            stop = end
            while stop > body + 1 and text[stop - 1] in _URL_TRAILING:
                stop -= 1
            spans.append((found.start(), stop))
            position = stop
        else:
            # Any other start inside this run would end at the same place and fail the same way.
            position = end
    return spans


def _graphemes(text: str) -> list[str]:
    """The text's extended grapheme clusters, in time linear in the text.

    The regex module's `\\X` looks back over the whole run of regional indicators before each
    one (flags pair up from the start of a run), so 35,000 flags in a row took 38 s. Inside a
    run of three or more, a cluster always ends between two pairs (the next indicator starts a
    new flag, and nothing else joins two indicators): those pairs are taken as they are, and
    only the text around them is segmented, as slices (findall's `pos` would still look back).
    """
    if _REGIONAL_INDICATOR.search(text) is None:
        return _GRAPHEME.findall(text)
    clusters: list[str] = []
    position = 0
    for run in _REGIONAL_INDICATOR_RUN.finditer(text):
        # Cuts at every second indicator from the run's start, each with an indicator after it.
        first_cut = run.start() + 2
        last_cut = run.start() + 2 * ((run.end() - run.start() - 1) // 2)
        clusters += _GRAPHEME.findall(text[position:first_cut])
        clusters += [text[at : at + 2] for at in range(first_cut, last_cut, 2)]
        position = last_cut
    clusters += _GRAPHEME.findall(text[position:])
    return clusters


def grapheme_length(text: str) -> int:
    """User-perceived characters (extended grapheme clusters, current Unicode)."""
    return len(_graphemes(text))


def _is_emoji_cluster(cluster: str) -> bool:
    """An emoji as twitter-text's emoji parser sees one: a whole sequence, skin tone and ZWJ
    joins included, a flag (two regional indicators), a keycap or a VS16 (U+FE0F) emoji."""
    return _EMOJI_CLUSTER.search(cluster) is not None


def _x_code_point_weight(text: str) -> int:
    """Every code point weighs 1 in X's ranges, 2 outside them."""
    return len(text) + len(_X_HEAVY.findall(text))


def x_weighted_length(text: str) -> int:
    """X's weighted length in characters (what must stay ≤ 280)."""
    text = _nfc(text)
    total = 0
    position = 0
    for start, end in _url_spans(text, _URL_START):
        total += _x_plain_weight(text[position:start])
        total += X_URL_LENGTH
        position = end
    return total + _x_plain_weight(text[position:])


def _nfc(text: str) -> str:
    """NFC, in time linear in the text.

    CPython's `unicodedata.normalize` puts combining marks in canonical order with an insertion
    sort, quadratic in a run of marks ("a" then 35,000 acute accents and 35,000 graves below
    took 30 s). No script needs eight marks in a row, so a text with such a run is decomposed
    character by character and each run of marks sorted by combining class (a stable sort,
    which is what canonical ordering is); CPython then finds it in order and only composes.
    """
    if text.isascii() or _MARK_RUN.search(text) is None:
        return unicodedata.normalize("NFC", text)
    ordered: list[str] = []
    marks: list[str] = []
    for char in "".join([unicodedata.normalize("NFD", char) for char in text]):
        if unicodedata.combining(char):
            marks.append(char)
            continue
        ordered += sorted(marks, key=unicodedata.combining)
        marks.clear()
        ordered.append(char)
    ordered += sorted(marks, key=unicodedata.combining)
    return unicodedata.normalize("NFC", "".join(ordered))


def _x_plain_weight(text: str) -> int:
    # Code points by weight, then each emoji cluster of several code points brought to 2 (an
    # emoji of one code point already weighs 2: none lies in the weight-1 ranges). A text
    # without an emoji hint, most of them, is never segmented at all.
    total = _x_code_point_weight(text)
    if _EMOJI_HINT.search(text) is None:
        return total
    adjustments: dict[str, int] = {}  # emoji repeat: each distinct cluster is looked at once
    for cluster in _graphemes(text):
        if len(cluster) > 1:
            adjustment = adjustments.get(cluster)
            if adjustment is None:
                adjustment = adjustments[cluster] = (
                    2 - _x_code_point_weight(cluster) if _is_emoji_cluster(cluster) else 0
                )
            total += adjustment
    return total


def mastodon_length(text: str, url_length: int = 23) -> int:
    """Mastodon's count: graphemes, every http(s) URL as `url_length`, `@user@host` as `@user`."""
    parts, position = [], 0
    for start, end in _url_spans(text, _HTTP_URL_START):
        parts += [text[position:start], "x" * url_length]
        position = end
    parts.append(text[position:])
    countable = _MASTODON_MENTION.sub(r"@\1", "".join(parts))
    return grapheme_length(countable)


def code_point_length(text: str) -> int:
    return len(text)


def hashtag_count(text: str) -> int:
    return len(_HASHTAG.findall(text))


def mention_count(text: str) -> int:
    return len(_MENTION.findall(text))
