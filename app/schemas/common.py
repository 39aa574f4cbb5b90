"""Fields and schemas shared by every resource."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


class Text(ma.fields.String):
    """A string with no NUL or other control characters (PostgreSQL refuses NUL in text),
    trimmed, with a length range that the spec documents."""

    _CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

    def __init__(self, *, min_len: int = 0, max_len: int = 200, **kwargs: Any) -> None:
        validators = list(kwargs.pop("validate", []) or [])
        validators.append(validate.Length(min=min_len, max=max_len))
        super().__init__(validate=validators, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if self._CONTROL.search(text):
            raise ma.ValidationError("Control characters are not allowed.")
        # Refuse lone surrogates: they cannot be stored or sent as UTF-8.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ma.ValidationError("Not valid Unicode text.") from exc
        return text.strip()


class Email(ma.fields.Email):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(max=320), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        email = super()._deserialize(value, attr, data, **kwargs)
        if Text._CONTROL.search(email):
            raise ma.ValidationError("Not a valid email address.")
        return email.strip().lower()


class Password(ma.fields.String):
    """A password: `min_len` is the policy for new passwords; sign-in takes any length."""

    def __init__(self, *, min_len: int = 10, **kwargs: Any) -> None:
        super().__init__(
            load_only=True,
            validate=validate.Length(min=min_len, max=512),
            metadata={"description": f"{min_len} to 512 characters", "format": "password"},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("NUL characters are not allowed.")
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
            validate=validate.Regexp(pattern, error="Not a valid id."), metadata=metadata, **kwargs
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
    # adding a day or a year never overflows into a 500.
    MIN_YEAR, MAX_YEAR = 1900, 9000

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        try:
            year = result.astimezone(UTC).year
        except OverflowError:
            year = 0
        if not self.MIN_YEAR <= year <= self.MAX_YEAR:
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
    cursor = Text(
        max_len=200,
        metadata={"description": "Opaque cursor from `next_cursor` of the previous page"},
    )


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
