"""Another agency's objects are 404 on every route and every verb of the spec, and leak nothing.

The matrix walks `spec_operations()`, so a new route is in it the day it is added. Its path
parameters are filled with agency A's objects (see `tests/world.py` PATH_PARAMS and the
generic factory), its body with a valid-looking payload naming A's objects, and it is called
as agency B (owner token, then B's unrestricted API key). Expected, for every call:

- a path naming A's objects → 404 problem+json;
- a body or query naming A's objects → the same answer as for ids that never existed, and
  never a success for a body;
- never a 5xx, never one of A's ids, names, slugs or e-mails in the headers or body (except
  the ids the caller sent itself);
- afterwards, every row A owns is exactly as before.

Each test also checks that it covered what the committed spec (openapi/openapi.json, read here
without the walker) says it must: every operation, every brand route, every body or query
naming an id. A refactor of the walker or of the world that silently drops cases fails.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.models import Brand
from tests.factories import model_for_prefix
from tests.matrix_requests import Call, never_existed, prepare_call, response_text, swap_ids
from tests.openapi_operations import spec_operations
from tests.tenant_data import snapshot, telltales
from tests.world import World, build_world

PROBLEM_JSON = "application/problem+json"
# Agency B's principals that try A's objects: a person (bearer token) and an agency key.
CROSS_AGENCY_CALLERS = ("owner", "key")

# -- what the matrix must cover, from the committed spec ----------------------------------------

SPEC_FILE = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
# Every method an OpenAPI path item may hold: a route the walker does not know still counts.
OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BRAND_ROUTE = "/v1/brands/{brand_id}"
ID_PATTERN_PREFIX = re.compile(r"^\^[a-z]{2,5}_")


@functools.cache
def _committed_spec() -> dict[str, Any]:
    return json.loads(SPEC_FILE.read_text())


def _committed_operations() -> dict[str, dict[str, Any]]:
    """`METHOD /path` → operation, for every operation of openapi/openapi.json."""
    return {
        f"{method.upper()} {path}": operation
        for path, item in _committed_spec()["paths"].items()
        for method, operation in item.items()
        if method in OPENAPI_METHODS
    }


def _brand_routes() -> set[str]:
    """The operations on one brand's objects (`/v1/brands/{brand_id}…`)."""
    return {key for key in _committed_operations() if key.split(" ")[1].startswith(BRAND_ROUTE)}


def _names_an_id(schema: Any, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a writable field of `schema` (at any depth, through `$ref`s) holds an id."""
    if isinstance(schema, list):
        return any(_names_an_id(item, seen) for item in schema)
    if not isinstance(schema, dict) or schema.get("readOnly"):
        return False
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = _committed_spec()["components"]["schemas"][name]
        return name not in seen and _names_an_id(target, seen | {name})
    if ID_PATTERN_PREFIX.match(str(schema.get("pattern", ""))):
        return True
    return any(_names_an_id(value, seen) for value in schema.values())


def _operations_naming_ids_in_body_or_query() -> set[str]:
    found = set()
    for key, operation in _committed_operations().items():
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        query = [p.get("schema", {}) for p in operation.get("parameters", []) if p["in"] == "query"]
        if _names_an_id(body.get("schema")) or _names_an_id(query):
            found.add(key)
    return found


def test_the_floors_are_read_from_the_spec():
    # The floors below are only as good as this reading: it must see the API as it is.
    assert len(_committed_operations()) >= 70
    assert "DELETE /v1/brands/{brand_id}/posts/{post_id}" in _brand_routes()
    assert len(_brand_routes()) >= 40
    assert "POST /v1/brands/{brand_id}/posts" in _operations_naming_ids_in_body_or_query()
    assert "GET /v1/audit-events" in _operations_naming_ids_in_body_or_query()


def _missing(floor: set[str], covered: set[str], what: str) -> str:
    missed = sorted(floor - covered)
    return f"{len(missed)} operations of the spec were not {what}:\n" + "\n".join(missed)


@pytest.fixture
def agencies(client, make_agency, invite_user) -> tuple[World, World]:
    a = build_world(client, make_agency, invite_user, "Alpha")
    b = build_world(client, make_agency, invite_user, "Bravo")
    return a, b


def _problems(
    client: Any,
    call: Call,
    response: Any,
    secrets: set[str],
    headers: dict[str, str],
    *,
    path_must_404: bool,
    foreign_ids: set[str] | None = None,
) -> list[str]:
    """What is wrong with `response` to `call`, which names another tenant's `foreign_ids`
    (by default every id it sent)."""
    foreign = call.sent_ids if foreign_ids is None else foreign_ids
    where = f"{call.op.key} ({call.url})"
    status = response.status_code
    found = []
    if status >= 500:
        found.append(f"{where}: {status}")
    text = response_text(response)
    leaked = sorted(s for s in secrets - call.sent_ids if s in text)
    if leaked:
        found.append(f"{where}: {status} shows the other tenant's {', '.join(leaked[:5])}")
    if path_must_404:
        if status != 404 or response.mimetype != PROBLEM_JSON:
            found.append(f"{where}: {status} {response.mimetype}, expected 404 problem+json")
        return found
    if foreign:
        control = swap_ids(call, never_existed, only=foreign).send(client, headers)
        if control.status_code != status:
            found.append(
                f"{where}: {status} for the other tenant's ids but {control.status_code} for ids "
                "that never existed (tells them apart)"
            )
        if any(i in repr(call.body) for i in foreign) and status < 400:
            found.append(f"{where}: {status}, accepted a body naming the other tenant's objects")
    return found


def test_spec_is_walked(agencies):
    # The matrix is only as good as the walk: it must see the tenant routes.
    keys = {op.key for op in spec_operations()}
    assert "GET /v1/brands/{brand_id}" in keys
    assert sum(1 for op in spec_operations() if op.path_params) >= 10
    assert keys == set(_committed_operations()), _missing(
        set(_committed_operations()), keys, "walked"
    )


def test_another_agency_gets_404_on_every_route_and_verb(client, database, agencies):
    a, b = agencies
    operations = spec_operations()
    calls = [
        (caller, prepare_call(op, a, a.brands[0]))
        for op in operations
        for caller in CROSS_AGENCY_CALLERS
    ]
    before = snapshot(database.owner_url, a.agency_id)
    secrets = telltales(before)
    assert any(s.startswith("brd_") for s in secrets) and any("@" in s for s in secrets)

    problems: list[str] = []
    sent: dict[str, set[str]] = {caller: set() for caller in CROSS_AGENCY_CALLERS}
    answered_404: dict[str, set[str]] = {caller: set() for caller in CROSS_AGENCY_CALLERS}
    for caller, call in calls:
        headers = b.headers(caller)
        response = call.send(client, headers)
        path_must_404 = bool(call.op.path_params)
        sent[caller].add(call.op.key)
        if path_must_404:
            answered_404[caller].add(call.op.key)
        problems += [
            f"[B {caller}] {p}"
            for p in _problems(
                client, call, response, secrets, headers, path_must_404=path_must_404
            )
        ]

    after = snapshot(database.owner_url, a.agency_id)
    changed = [table for table in before if before[table] != after[table]]
    assert not changed, f"agency B's calls changed agency A's rows in: {changed}"
    assert not problems, (
        f"{len(problems)} isolation failures over {len(calls)} calls:\n" + "\n".join(problems)
    )
    # The floor: every operation of the spec, by each caller, and every brand route held to 404.
    everything = set(_committed_operations())
    for caller in CROSS_AGENCY_CALLERS:
        assert sent[caller] >= everything, _missing(everything, sent[caller], f"sent as {caller}")
        assert answered_404[caller] >= _brand_routes(), _missing(
            _brand_routes(), answered_404[caller], f"held to a 404 as {caller}"
        )
    assert len(calls) >= len(everything) * len(CROSS_AGENCY_CALLERS)


def test_another_agencys_ids_in_a_body_or_query_are_refused(client, database, agencies):
    """B acting in its own brand with a body naming its own objects, but one of them swapped
    for A's (a post with A's media or account, a member who is A's user, a key limited to A's
    brand): answered as for an id that never existed, never accepted, A's rows untouched."""
    a, b = agencies
    calls = []
    for op in spec_operations():
        own = prepare_call(op, b, b.brands[0])
        for own_id in sorted(own.body_ids):
            foreign = a.id_for(own_id.split("_", 1)[0], "", a.brands[0])
            calls.append((swap_ids(own, lambda _, f=foreign: f, only={own_id}), foreign))
    before = snapshot(database.owner_url, a.agency_id)
    secrets = telltales(before)
    problems: list[str] = []
    for call, foreign in calls:
        headers = b.headers("owner")
        response = call.send(client, headers)
        problems += _problems(
            client, call, response, secrets, headers, path_must_404=False, foreign_ids={foreign}
        )
    after = snapshot(database.owner_url, a.agency_id)
    changed = [table for table in before if before[table] != after[table]]
    assert not changed, f"agency B's calls changed agency A's rows in: {changed}"
    assert not problems, f"{len(problems)} of {len(calls)} calls:\n" + "\n".join(problems)
    # The floor: every operation whose body or query names an id got one of A's ids.
    naming = _operations_naming_ids_in_body_or_query()
    covered = {call.op.key for call, _ in calls}
    assert covered >= naming, _missing(naming, covered, "sent with one of A's ids")
    assert len(calls) >= len(naming) >= 8


def _owned_by_a_brand(object_id: str) -> bool:
    model = model_for_prefix(object_id.split("_", 1)[0])
    return model is Brand or (model is not None and "brand_id" in model.__table__.c)


def test_brand_limited_key_gets_404_for_its_agencys_other_brand(client, database, agencies):
    a, _ = agencies
    other_brand = a.brands[1]  # `key_brand` is limited to brand 0
    headers = a.headers("key_brand")
    before = snapshot(database.owner_url, a.agency_id)
    secrets = {s for s in telltales(before) if other_brand in s} | {other_brand}
    problems: list[str] = []
    checked: set[str] = set()
    held_to_404: set[str] = set()
    for op in spec_operations():
        if op.public:
            continue
        call = prepare_call(op, a, other_brand)
        in_path = [p for p in call.url.split("?")[0].split("/") if p in call.sent_ids]
        must_404 = any(_owned_by_a_brand(i) for i in in_path)
        if not must_404 and not call.names_ids_in_body:
            continue
        checked.add(op.key)
        if must_404:
            held_to_404.add(op.key)
        response = call.send(client, headers)
        problems += _problems(client, call, response, secrets, headers, path_must_404=must_404)
    after = snapshot(database.owner_url, a.agency_id)
    changed = [t for t in before if [r for r in before[t] if r not in after[t]]]
    assert not changed, f"the brand-limited key changed rows of another brand in: {changed}"
    assert not problems, "\n".join(problems)
    # The floor: every route of the other brand was held to a 404.
    assert held_to_404 >= _brand_routes(), _missing(_brand_routes(), held_to_404, "held to a 404")
    assert len(checked) >= len(_brand_routes()) >= 10


def test_idempotent_replay_stays_with_the_principal_that_made_it(client, agencies):
    """A replay skips the view, so it must only ever answer the caller that made the request:
    otherwise anyone of the agency could replay an owner's create (and its shown-once secret)
    without the owner's permissions."""
    a, b = agencies
    body = {"name": "ci key"}
    key = {"Idempotency-Key": "create-ci-key"}
    first = client.post("/v1/api-keys", json=body, headers={**a.headers("owner"), **key})
    assert first.status_code == 201, first.get_json()
    secret = first.get_json()["key"]
    for role in ("client", "member", "key", "admin"):
        again = client.post("/v1/api-keys", json=body, headers={**a.headers(role), **key})
        assert secret not in again.get_data(as_text=True), role
        assert again.headers.get("Idempotent-Replayed") is None, role
        assert again.status_code == (201 if role == "admin" else 403), role
    other = client.post("/v1/api-keys", json=body, headers={**b.headers("owner"), **key})
    assert other.status_code == 201 and other.get_json()["key"] != secret
    replay = client.post("/v1/api-keys", json=body, headers={**a.headers("owner"), **key})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()["key"] == secret
