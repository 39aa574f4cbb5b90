"""Fields and schemas shared by every resource."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


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


class Email(ma.fields.Email):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(max=320), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).lower()


class Password(ma.fields.String):
    """A password: `min_len` is the policy for new passwords; sign-in takes any length."""

    def __init__(self, *, min_len: int = 10, **kwargs: Any) -> None:
        super().__init__(
            load_only=True,
            validate=[
                validate.Length(min=min_len, max=512),
                Pattern(r"^[^\x00]*$", error="NUL characters are not allowed."),
            ],
            metadata={
                "description": f"{min_len} to 512 characters, NUL excepted",
                "format": "password",
            },
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        # A lone surrogate (valid JSON "\ud800") cannot be encoded for the hash: refuse it here
        # rather than fail inside argon2.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ma.ValidationError("Not valid Unicode text.") from exc
        return text


class Id(ma.fields.String):
    """An opaque prefixed id (`brd_01J…`). Only an id of one kind gets an example: an id of any
    kind (a page cursor) has no honest one."""

    def __init__(self, prefix: str | None = None, **kwargs: Any) -> None:
        pattern = rf"^{prefix or '[a-z]{2,5}'}_[0-9A-HJKMNP-TV-Z]{{26}}$"
        metadata: dict[str, Any] = {"pattern": pattern}
        if prefix:
            metadata["example"] = f"{prefix}_01JD5ZQ7R9X4M2B8C6N3P1T0VW"
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(
            validate=Pattern(pattern, error="Not a valid id."), metadata=metadata, **kwargs
        )


class HttpUrl(ma.fields.String):
    """An http(s) URL in ASCII, up to 2,000 characters. A documented pattern rather than
    `fields.URL`, whose rules (a dotted host, say) no spec can state."""

    PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"example": "https://example.com/page"}
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(
            validate=[
                validate.Length(max=2000),
                Pattern(self.PATTERN, error="Not an http(s) URL in ASCII."),
            ],
            metadata=metadata,
            **kwargs,
        )


def _iana_timezones() -> frozenset[str]:
    # The `tzdata` package's list, not the host's: `zoneinfo` falls back to that package, so
    # every name in it loads, and the answer is the same on every machine.
    from importlib.resources import files

    names = files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(n for n in names if n not in {"Factory", "localtime", "posixrules"})


IANA_TIMEZONES = _iana_timezones()


class Timezone(ma.fields.String):
    """An IANA time zone name (`Europe/Paris`), one that `zoneinfo` loads from the tz database.

    The spec states it as a string with a pattern and an example, not as an enum: 597 names
    make every generated client carry a giant type, and some of them (`GMT0`, `GMT-0`, `GMT+0`)
    become the same identifier in a generated enum.
    """

    PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
    ERROR = "Not an IANA time zone name; give one such as Europe/Paris or America/New_York."

    def __init__(self, **kwargs: Any) -> None:
        # Every name in the database matches the pattern (a test checks it), so the one check,
        # membership, is as strict as the spec says and never stricter.
        metadata = {
            "description": "IANA time zone name (tz database), such as `Europe/Paris`",
            "example": "Europe/Paris",
            "pattern": self.PATTERN,
            "maxLength": 64,
        }
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(validate=self._known, metadata=metadata, **kwargs)

    def _known(self, value: str) -> None:
        if value not in IANA_TIMEZONES:
            raise ma.ValidationError(self.ERROR)


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


class PageArgsSchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Items per page, 1 to {MAX_PAGE_SIZE}"},
    )
    cursor = Id(
        metadata={"description": "`next_cursor` of the previous page: the page starts after it"},
    )


class OneOfSchema(ma.Schema):
    """A body that must match exactly one of `ALTERNATIVES` (each refusing unknown fields); the
    spec documents it as `oneOf` the alternatives (see `app.openapi`)."""

    ALTERNATIVES: tuple[type[ma.Schema], ...] = ()

    def load(self, data: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        loaded: list[Any] = []
        failures: list[dict[str, Any]] = []
        for alternative in self.ALTERNATIVES:
            try:
                loaded.append(alternative().load(data, **kwargs))
            except ma.ValidationError as exc:
                failures.append(exc.normalized_messages())
        if len(loaded) == 1:
            return loaded[0]
        if loaded:
            raise ma.ValidationError("The body matches more than one form.")
        # Explain with the form the body came closest to.
        raise ma.ValidationError(min(failures, key=len))


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A page of items with the cursor of the next page (null on the last page)."""
    return type(
        name,
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(
                required=True,
                allow_none=True,
                metadata={"description": "Pass as `cursor` to get the next page; null at the end"},
            ),
        },
    )


def dump_datetime(value: datetime | None) -> str | None:
    """What the schemas' AwareDateTime fields dump (an aware UTC datetime in RFC 3339), for the
    lean lists that build their JSON without marshmallow."""
    return value.isoformat() if value is not None else None
