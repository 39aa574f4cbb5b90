"""Fields and schemas shared by every resource (the field types that services use too, such as
`Text`, `Name` and `Timestamp`, are in `app.fields`)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from app.fields import Pattern

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


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
