"""Field types for what a value may be, shared by the API's schemas and the services that read
input another way (the CSV import of posts): a text, a name, an instant, and how an instant is
written out. They live below both layers, so that a service applies the API's own rules without
importing `app.schemas`, and a schema never imports a service (tests/test_layers.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate


class Pattern(validate.Regexp):
    """`validate.Regexp` with JSON Schema's meaning: in Python `$` also matches before a final
    newline, so `brd_…\n` would pass a pattern that the spec (ECMA regex) says it fails."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


# Characters a text field refuses: C0/C1 controls except tab and newlines (PostgreSQL refuses
# NUL; the rest are invisible and only ever smuggled in). Spelled as regex classes so that the
# spec documents exactly what the validator checks.
_CONTROL_CLASS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# The white space trimmed from both ends of a text (spelled out, rather than `\s` or
# `str.strip()`, whose sets differ between Python and the ECMA regexes of JSON Schema).
_SPACE_CHARS = (
    "\t\n\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_SPACE_CLASS = r"\t\n\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
TEXT_PATTERN = rf"^[^{_CONTROL_CLASS}]*$"
# Leading white space, then the first other character: a pattern that backtracks only once over
# the value (`^[^C]*[^CS][^C]*$` would try every split, quadratic in a long value, and a field's
# pattern runs even when its length check has already failed).
NON_BLANK_TEXT_PATTERN = (
    rf"^[{_SPACE_CLASS}]*[^{_CONTROL_CLASS}{_SPACE_CLASS}][^{_CONTROL_CLASS}]*$"
)


class Text(ma.fields.String):
    """A string without control characters, trimmed, with a length range; when `min_len` is at
    least 1 it must also hold something other than white space. The spec documents all of it
    (`pattern`, `minLength`, `maxLength`), so a client knows what passes before sending."""

    def __init__(self, *, min_len: int = 0, max_len: int = 200, **kwargs: Any) -> None:
        validators = list(kwargs.pop("validate", []) or [])
        validators += [validate.Length(min=min_len, max=max_len), self._pattern(min_len)]
        super().__init__(validate=validators, **kwargs)

    @staticmethod
    def _pattern(min_len: int) -> Pattern:
        pattern = NON_BLANK_TEXT_PATTERN if min_len >= 1 else TEXT_PATTERN
        error = "Control characters are not allowed" + (
            "; give some text, not only white space." if min_len >= 1 else "."
        )
        return Pattern(pattern, error=error)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        # Refuse lone surrogates: they cannot be stored or sent as UTF-8.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ma.ValidationError("Not valid Unicode text.") from exc
        return text

    def deserialize(self, *args: Any, **kwargs: Any) -> Any:
        # Trim after validation, so the limits the spec states apply to what the client sent.
        text = super().deserialize(*args, **kwargs)
        return text.strip(_SPACE_CHARS) if isinstance(text, str) else text


# Bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI): in a
# name shown among others they reorder the text around it, so "Acme\u202egnp.exe" reads as
# something it is not. (The marks U+200E, U+200F and U+061C change nothing around them.)
_BIDI_CONTROLS = ((0x202A, 0x202E), (0x2066, 0x2069))
# What shows nothing on its own: white space, every format character (Unicode category Cf, in
# Unicode 15: soft hyphen, zero-width space and joiners, word joiner, bidi marks, byte order
# mark, tags…) and the characters drawn blank (combining grapheme joiner, Hangul fillers,
# Khmer inherent vowels, Mongolian variation selectors, Braille blank, variation selectors).
# Written out rather than read from unicodedata, so that the spec is the same on every Python;
# a test checks it against unicodedata's Cf.
_INVISIBLE = (
    (0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0xAD, 0xAD), (0x34F, 0x34F),
    (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891),
    (0x8E2, 0x8E2), (0x115F, 0x1160), (0x1680, 0x1680), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x206F), (0x2800, 0x2800), (0x3000, 0x3000),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xE0100, 0xE01EF),
)  # fmt: skip


def _class_of(ranges: tuple[tuple[int, int], ...]) -> str:
    """A character class body both Python and ECMA regexes read alike: `\\uXXXX` escapes in
    the BMP; characters beyond it (no escape is common to both) as themselves."""

    def one(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(one(lo) if lo == hi else f"{one(lo)}-{one(hi)}" for lo, hi in ranges)


def _without(ranges, holes) -> tuple[tuple[int, int], ...]:  # type: ignore[no-untyped-def]
    codes = {c for lo, hi in ranges for c in range(lo, hi + 1)}
    codes -= {c for lo, hi in holes for c in range(lo, hi + 1)}
    merged: list[list[int]] = []
    for code in sorted(codes):
        if merged and merged[-1][1] == code - 1:
            merged[-1][1] = code
        else:
            merged.append([code, code])
    return tuple((lo, hi) for lo, hi in merged)


_BIDI_CLASS = _class_of(_BIDI_CONTROLS)
# Leading invisible characters, then the first visible one, then anything but controls and bidi
# controls: like NON_BLANK_TEXT_PATTERN, a shape that backtracks only once over the value. The
# group matches nothing more; it keeps schemathesis from rewriting the pattern with maxLength
# folded in, which it spells in Python's syntax (`\U000e0020`, no ECMA escape) and then cannot
# use (a non-capturing group would not do: Python's parser flattens it).
NAME_PATTERN = (
    f"^([{_class_of(_without(_INVISIBLE, _BIDI_CONTROLS))}]*"
    f"[^{_CONTROL_CLASS}{_BIDI_CLASS}{_class_of(_INVISIBLE)}]"
    f"[^{_CONTROL_CLASS}{_BIDI_CLASS}]*)$"
)
_CONTROL_RE = re.compile(f"[{_CONTROL_CLASS}]")
_BIDI_RE = re.compile(f"[{_BIDI_CLASS}]")


class _NamePattern(Pattern):
    """NAME_PATTERN, with a message that says which of its rules the value breaks."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is not None:
            return value
        if _CONTROL_RE.search(value):
            message = "Control characters are not allowed."
        elif _BIDI_RE.search(value):
            message = (
                "Bidirectional override and isolate controls (U+202A to U+202E, U+2066 to "
                "U+2069) are not allowed in a name: they change how the text around it reads."
            )
        else:
            message = (
                "Give a name that shows something: this one is empty, or only white space "
                "and invisible characters."
            )
        raise ma.ValidationError(message)


class Name(Text):
    """A name people read in lists and pick from (an agency, a brand, a person, a label, an API
    key): text that shows at least one visible character and holds no bidirectional override
    or isolate. A name of zero-width spaces looks like no name at all, and an override makes a
    name read as another."""

    def __init__(self, *, max_len: int = 200, **kwargs: Any) -> None:
        metadata = {
            "description": "Shows at least one visible character; no bidi override or isolate"
        }
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(min_len=1, max_len=max_len, metadata=metadata, **kwargs)

    @staticmethod
    def _pattern(min_len: int) -> Pattern:
        return _NamePattern(NAME_PATTERN)


class Timestamp(ma.fields.AwareDateTime):
    """An RFC 3339 date-time with its offset (`2026-03-29T09:00:00Z`, `…+02:00`, a fraction of
    a second allowed), loaded as the same instant in UTC, as every read answers it.

    Only RFC 3339: Python's `fromisoformat`, underneath, also takes ISO 8601's other forms
    (`20260101T100000Z`, week and ordinal dates, no seconds), which a client's own validation of
    the spec's `date-time` would refuse. A datetime without an offset is refused, never guessed.
    """

    default_error_messages = {
        "invalid": (
            "Not an RFC 3339 date-time: give the date, 'T', the time with seconds and the "
            "offset, e.g. 2026-03-29T09:00:00Z or 2026-03-29T09:00:00.5+02:00."
        ),
        "invalid_awareness": (
            "The datetime has no offset; give one, e.g. 2026-03-29T09:00:00+02:00."
        ),
        "out_of_range": (
            "No such date or time: check the month, day, hour, minute, second and offset."
        ),
        "year": "Give an instant between the years {min} and {max}.",
    }

    # Far enough for any schedule, and far from datetime's limits, so converting to UTC or
    # adding a day or a year never overflows into a 500.
    MIN_YEAR, MAX_YEAR = 1900, 9000
    _DATE = r"(19[0-9]{2}|[2-8][0-9]{3}|9000)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    _TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    _OFFSET = r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
    PATTERN = rf"^{_DATE}[Tt]{_TIME}{_OFFSET}$"
    _RFC3339 = re.compile(PATTERN)
    # The same shape with any digits, to say what is wrong with a value that has it.
    _SHAPE = re.compile(
        r"^([0-9]{4})-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
        r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?$"
    )

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": self.PATTERN, "example": "2026-03-29T09:00:00+02:00"}
        metadata.update(kwargs.pop("metadata", {}))
        if "description" in metadata:
            metadata["description"] += f" (years {self.MIN_YEAR} to {self.MAX_YEAR})"
        super().__init__(format="iso", metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if self._RFC3339.fullmatch(value) is None:
            shape = self._SHAPE.fullmatch(value)
            if shape is None:
                raise self.make_error("invalid")
            if not self.MIN_YEAR <= int(shape.group(1)) <= self.MAX_YEAR:
                raise self.make_error("year", min=self.MIN_YEAR, max=self.MAX_YEAR)
            if shape.group("offset") is None:
                raise self.make_error("invalid_awareness")
            raise self.make_error("out_of_range")
        try:
            # RFC 3339 allows a lower-case "t" and "z"; fromisoformat only upper-case ones.
            result = super()._deserialize(value.upper(), attr, data, **kwargs)
        except ma.ValidationError:  # 30 February, say: the pattern does not count days
            raise self.make_error("out_of_range") from None
        return result.astimezone(UTC)


def dump_datetime(value: datetime | None) -> str | None:
    """What the schemas' AwareDateTime fields dump (an aware UTC datetime in RFC 3339), for the
    lean lists that build their JSON without marshmallow."""
    return value.isoformat() if value is not None else None
