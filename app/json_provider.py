"""JSON in and out: UTF-8 as it is written, and a bound on how deep a body may nest.

Out: `ensure_ascii=False`, so "Agence Lumière" leaves as UTF-8 (what `application/json` means,
RFC 8259 section 8.1) and not as `\\u00e8` escapes that a person reading the body must decode.

In: Python's JSON decoder recurses once per nesting level, so a 2 KB body of 1,000 `[` ends in
a RecursionError (a 500) and a few hundred levels can still exhaust the stack later, in
marshmallow or when the body is dumped again. No Relais body nests beyond a handful of levels,
so a body nested deeper than `MAX_JSON_DEPTH` is refused before it is parsed, by a scan that
costs linear time whatever the input (the body itself is capped by MAX_CONTENT_LENGTH).
Every JSON body the API reads passes through `check_depth`: Flask's `request.get_json` through
this provider's `loads`, webargs' parser through `app.api.http.JsonBodyParser`.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from flask.json.provider import DefaultJSONProvider

from app.errors import AppError

MAX_JSON_DEPTH = 32

# A JSON string, so that brackets inside strings do not count. Possessive quantifiers keep the
# scan linear (no backtracking), and the closing quote is optional so that an unterminated
# string is consumed once, to the end, instead of being retried from every later quote.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = [1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256)]


class JsonTooDeep(AppError):
    status, code, title = 400, "json-too-deep", "The JSON body is nested too deeply"


def json_depth(document: bytes | str) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar), in linear time.

    Invalid JSON gets some number too; the parser that runs next refuses it.
    """
    if isinstance(document, str):
        document = document.encode("utf-8", "surrogatepass")
    brackets = _STRING.sub(b"", document).translate(None, _NOT_A_BRACKET)
    # All in C: the running depth after each bracket, and its maximum.
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(document: bytes | str) -> None:
    opening = ("[", "{") if isinstance(document, str) else (b"[", b"{")
    if sum(document.count(bracket) for bracket in opening) <= MAX_JSON_DEPTH:  # type: ignore[arg-type]
        return  # too few brackets to nest that deep: most bodies stop here
    if json_depth(document) > MAX_JSON_DEPTH:
        raise JsonTooDeep(
            f"The JSON body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep; "
            "no Relais request needs more than a few.",
            errors={"json": [f"At most {MAX_JSON_DEPTH} levels of nesting."]},
        )


class RelaisJSONProvider(DefaultJSONProvider):
    """Flask's provider, writing UTF-8 and refusing deeply nested input (see the module)."""

    ensure_ascii = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate (JSON input may carry "\ud800") has no UTF-8 form: escape
                # this one document rather than fail while sending it.
                return super().dumps(obj, **{**kwargs, "ensure_ascii": True})
        return text

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        check_depth(s)
        return super().loads(s, **kwargs)
