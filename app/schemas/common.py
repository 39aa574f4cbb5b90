"""Fields and schemas shared by every resource."""

from __future__ import annotations

from datetime import datetime
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
NON_BLANK_TEXT_PATTERN = (
    rf"^[^{_CONTROL_CLASS}]*[^{_CONTROL_CLASS}{_SPACE_CLASS}][^{_CONTROL_CLASS}]*$"
)


class Text(ma.fields.String):
    """A string without control characters, trimmed, with a length range; when `min_len` is at
    least 1 it must also hold something other than white space. The spec documents all of it
    (`pattern`, `minLength`, `maxLength`), so a client knows what passes before sending."""

    def __init__(self, *, min_len: int = 0, max_len: int = 200, **kwargs: Any) -> None:
        pattern = NON_BLANK_TEXT_PATTERN if min_len >= 1 else TEXT_PATTERN
        error = "Control characters are not allowed" + (
            "; give some text, not only white space." if min_len >= 1 else "."
        )
        validators = list(kwargs.pop("validate", []) or [])
        validators += [
            validate.Length(min=min_len, max=max_len),
            Pattern(pattern, error=error),
        ]
        super().__init__(validate=validators, **kwargs)

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
    """An opaque prefixed id (`brd_01J…`)."""

    def __init__(self, prefix: str | None = None, **kwargs: Any) -> None:
        pattern = rf"^{prefix or '[a-z]{2,5}'}_[0-9A-HJKMNP-TV-Z]{{26}}$"
        metadata = {"pattern": pattern, "example": f"{prefix or 'brd'}_01JD5ZQ7R9X4M2B8C6N3P1T0VW"}
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


def _iana_timezones() -> list[str]:
    # The `tzdata` package's list, not the host's: the spec documents it, and must not change
    # from one machine to the next.
    from importlib.resources import files

    names = files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return sorted(n for n in names if n not in {"Factory", "localtime", "posixrules"})


IANA_TIMEZONES = _iana_timezones()


class Timezone(ma.fields.String):
    """An IANA time zone name (`Europe/Paris`); the spec lists every accepted name."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"description": "IANA time zone", "example": "Europe/Paris"}
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(
            validate=validate.OneOf(IANA_TIMEZONES, error="Not an IANA time zone name."),
            metadata=metadata,
            **kwargs,
        )


class Timestamp(ma.fields.AwareDateTime):
    """RFC 3339 with an offset; a naive datetime is refused, never guessed."""

    default_error_messages = {
        "invalid": "Not a valid RFC 3339 datetime.",
        "invalid_awareness": (
            "The datetime has no offset; give one, e.g. 2026-03-29T09:00:00+02:00."
        ),
    }

    # Far enough for any schedule, and far from datetime's limits, so converting to UTC or
    # adding a day or a year never overflows into a 500. The year is checked as written, so
    # that the spec can state the rule as a pattern.
    MIN_YEAR, MAX_YEAR = 1900, 9000
    PATTERN = r"^(19[0-9]{2}|[2-8][0-9]{3}|9000)-"

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": self.PATTERN}
        metadata.update(kwargs.pop("metadata", {}))
        if "description" in metadata:
            metadata["description"] += f" (years {self.MIN_YEAR} to {self.MAX_YEAR})"
        super().__init__(format="iso", metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        if not self.MIN_YEAR <= result.year <= self.MAX_YEAR:
            raise ma.ValidationError(
                f"Give an instant between the years {self.MIN_YEAR} and {self.MAX_YEAR}."
            )
        return result


class PageArgsSchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Items per page, 1 to {MAX_PAGE_SIZE}"},
    )
    cursor = Id(
        metadata={
            "description": "`next_cursor` of the previous page: the page starts after it",
            "example": None,
        },
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
