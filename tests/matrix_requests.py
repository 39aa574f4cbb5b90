"""The requests the role and isolation matrices send: every operation of the spec, called on a
world's objects (tests/world.py) with a valid-looking body and query.

- `prepare_call(op, world, brand_id)`: the operation with fresh objects for its path
  parameters, and a body built from its JSON schema by `example_body()`, ids taken from the
  world (so B's body names A's objects in the isolation matrix).
- `swap_ids()` and `never_existed()`: the same call with the ids it names replaced, to compare
  an answer with the answer for ids that never existed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from app.models.base import utcnow
from tests.factories import unique
from tests.openapi_operations import Operation, openapi_spec
from tests.world import World

# An id field's schema pattern starts with its kind's prefix: "^pst_[0-9A-HJKMNP-TV-Z]{26}$".
_ID_PREFIX_IN_PATTERN = re.compile(r"^\^([a-z]{2,5})_")


# -- bodies ---------------------------------------------------------------------------------------

IdSource = Callable[[str, str], str]  # (id prefix, field name) -> an id


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = openapi_spec()["components"]["schemas"][name]
    return schema


# Values a field's name calls for, when its schema alone cannot tell (an IANA zone, say).
FIELD_HINTS: dict[str, Callable[[], Any]] = {
    "timezone": lambda: "Europe/Paris",
    "slug": lambda: unique("matrix"),
    "password": lambda: "matrix password 0123456789",
    "email": lambda: f"{unique('matrix')}@example.com",
    "primary_color": lambda: "#112233",
    "secondary_color": lambda: "#445566",
    "time": lambda: "09:00",  # a posting slot's local HH:MM
    "logo_url": lambda: f"https://example.com/{unique('matrix')}.png",
    "link": lambda: f"https://example.com/{unique('matrix')}",
    # A webhook endpoint's URL: the suite's outbound guard lets only loopback targets through.
    # Nothing listens on port 9 (discard), and no test sends the matrices' deliveries.
    "url": lambda: f"http://127.0.0.1:9/{unique('matrix')}",
}


def example_value(name: str, schema: dict[str, Any], ids: IdSource) -> Any:
    schema = _resolve(schema)
    if name in FIELD_HINTS:
        return FIELD_HINTS[name]()
    if "anyOf" in schema:  # OpenAPI 3.1's "this, or null": take "this"
        schema = next(_resolve(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "enum" in schema:
        # The last value: for roles, the least powerful one (member, client).
        return schema["enum"][-1]
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1's nullable field: ["array", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        return example_body(schema, ids)
    if kind == "array":
        return [example_value(name.removesuffix("s"), schema.get("items", {}), ids)]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return float(max(schema.get("minimum", 1), 1))
    if kind == "boolean":
        return True
    prefix = _ID_PREFIX_IN_PATTERN.match(schema.get("pattern", ""))
    if prefix:
        return ids(prefix.group(1), name)
    fmt = schema.get("format")
    if fmt == "email":
        return f"{unique('matrix')}@example.com"
    if fmt in ("url", "uri"):
        return f"https://example.com/{unique('matrix')}.png"
    if fmt == "date-time":
        return (utcnow() + timedelta(days=1)).isoformat()
    value = unique("Matrix")
    return value[: schema.get("maxLength", len(value))]


def example_body(schema: dict[str, Any], ids: IdSource) -> dict[str, Any]:
    """Every writable property, with a value its schema (and name) accepts. A body of several
    forms (`oneOf`) takes the form with the most properties (a brand invitation, say)."""
    schema = _resolve(schema)
    if "oneOf" in schema:
        forms = [_resolve(form) for form in schema["oneOf"]]
        schema = max(forms, key=lambda form: len(form.get("properties", {})))
    return {
        name: example_value(name, prop, ids)
        for name, prop in schema.get("properties", {}).items()
        if not _resolve(prop).get("readOnly")
    }


# -- requests -------------------------------------------------------------------------------------


@dataclass
class Call:
    op: Operation
    url: str
    body: dict[str, Any] | None
    sent_ids: set[str]
    # The ids the body and query name (a subset of sent_ids).
    body_ids: set[str] = field(default_factory=set)

    def send(self, client: Any, headers: dict[str, str]) -> Any:
        return client.open(self.url, method=self.op.method, json=self.body, headers=headers)

    @property
    def names_ids_in_body(self) -> bool:
        return any(i in repr(self.body) for i in self.sent_ids)


def prepare_call(op: Operation, world: World, brand_id: str) -> Call:
    """The operation on `world`'s objects (fresh ones for path parameters) in brand `brand_id`."""
    sent: set[str] = set()
    body_ids: set[str] = set()
    # One object per kind in a body, so its fields agree (a variant's account is a target).
    by_prefix: dict[str, str] = {}

    def ids(prefix: str, field_name: str) -> str:
        if prefix not in by_prefix:
            by_prefix[prefix] = world.id_for(prefix, field_name, brand_id)
        value = by_prefix[prefix]
        sent.add(value)
        body_ids.add(value)
        return value

    url = op.path
    params = {"brand_id": brand_id}
    for name in op.path_params:
        value = world.path_param(op.path, name, params)
        params[name] = value
        sent.add(value)
        url = url.replace("{" + name + "}", value)
    query = []
    for param in op.query_params():
        prefix = _ID_PREFIX_IN_PATTERN.match(param.get("schema", {}).get("pattern", ""))
        if prefix:
            query.append(f"{param['name']}={ids(prefix.group(1), param['name'])}")
        elif param.get("required"):
            value = example_value(param["name"], param["schema"], ids)
            # Encoded: a "+" in an offset would otherwise arrive as a space.
            query.append(f"{param['name']}={quote(str(value), safe='')}")
    if query:
        url += "?" + "&".join(query)
    schema = op.body_schema()
    body = example_body(schema, ids) if schema is not None else None
    return Call(op=op, url=url, body=body, sent_ids=sent, body_ids=body_ids)


def swap_ids(call: Call, replacement: Callable[[str], str], only: set[str] | None = None) -> Call:
    """The same call with the ids it names (or `only` those) replaced, to compare with ids
    that never existed."""
    mapping = {i: replacement(i) for i in (call.sent_ids if only is None else only)}

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return mapping.get(value, value)
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    url = call.url
    for old, new in mapping.items():
        url = url.replace(old, new)
    kept = call.sent_ids - set(mapping)
    return Call(
        op=call.op,
        url=url,
        body=swap(call.body),
        sent_ids=kept | set(mapping.values()),
        body_ids={mapping.get(i, i) for i in call.body_ids},
    )


def never_existed(some_id: str) -> str:
    """An id of the same kind that no row has."""
    from app.ids import new_id

    return new_id(some_id.split("_", 1)[0])


def response_text(response: Any) -> str:
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return headers + "\n" + response.get_data(as_text=True)
