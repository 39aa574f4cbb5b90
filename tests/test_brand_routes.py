"""Every route under `/v1/brands/<brand_id>` goes through the one preamble, `brand_route`
(app/api/http.py): 404 for what the caller cannot reach, then 403, before the request's body is
read; and every change of an existing post, brand, account or media honours `If-Match`.

The walks read the application's url_map (and the spec built from it), so a route added
tomorrow is checked the day it is added.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.views import MethodView

from app.api.http import PATH_OBJECTS, Blueprint, brand_route, brand_route_of
from app.auth import permissions
from app.models import Post
from app.schemas.posts import PostSchema, PostUpdateSchema
from tests.matrix_requests import prepare_call
from tests.openapi_operations import spec_operations
from tests.tenant_data import snapshot
from tests.world import build_world

PROBLEM_JSON = "application/problem+json"
BRAND_RULE = "/v1/brands/<id(brd):brand_id>"
CHANGES = {"POST", "PUT", "PATCH", "DELETE"}

# Changes under a brand that are not a change of an existing post, brand, account or media, so
# they have no ETag to match: each says why.
WITHOUT_IF_MATCH = {
    "POST /v1/brands/{brand_id}/posts": "creates a post",
    "POST /v1/brands/{brand_id}/posts/import": "creates posts",
    "POST /v1/brands/{brand_id}/media": "creates a media item",
    "POST /v1/brands/{brand_id}/accounts": "connects an account (creates it, or reconnects the "
    "one with the same network identity)",
    "POST /v1/brands/{brand_id}/accounts/connect": "starts an OAuth authorization: no change yet",
    "POST /v1/brands/{brand_id}/accounts/callback": "finishes an OAuth authorization, bound to "
    "its state (a reconnection was checked against If-Match when it started)",
    "POST /v1/brands/{brand_id}/members": "adds someone to the brand",
    "PATCH /v1/brands/{brand_id}/members/{membership_id}": "a membership has no version (and its "
    "GET no ETag): a role is set whole",
    "DELETE /v1/brands/{brand_id}/members/{membership_id}": "a membership has no version",
    "PUT /v1/brands/{brand_id}/posting-slots": "replaces the whole weekly set, which has no "
    "version of its own (and its GET no ETag)",
}


def _spec_path(rule: str) -> str:
    """`/v1/brands/<id(brd):brand_id>/posts` → `/v1/brands/{brand_id}/posts`, as in the spec."""
    return re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule)


def _brand_routes(app: Any) -> Iterator[tuple[str, str, Any]]:
    """(method, spec path, view function) of every route under a brand."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(BRAND_RULE):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, _spec_path(rule.rule), app.view_functions[rule.endpoint]


# -- the preamble on every route ------------------------------------------------------------------


def test_every_brand_route_goes_through_brand_route(app):
    routes = list(_brand_routes(app))
    missing = [
        f"{method} {path}" for method, path, view in routes if not brand_route_of(view, method)
    ]
    assert len(routes) >= 45, "the walk must see the brand routes"
    assert not missing, (
        "Brand routes without `@brand_route(...)` stacked above @idempotent, @blp.arguments and "
        "@blp.response (app/api/http.py):\n" + "\n".join(missing)
    )


def _view_class(*decorators: Any) -> Any:
    """A MethodView whose PATCH has `decorators`, the first outermost."""

    def patch(self, *args: Any, **kwargs: Any) -> None:
        """Edit

        For the test.
        """

    for decorate in reversed(decorators):
        patch = decorate(patch)
    return type("Probe", (MethodView,), {"patch": patch})


def test_a_route_without_the_preamble_or_with_it_below_the_body_is_caught():
    blp = Blueprint("probe", __name__)
    preamble = brand_route("posts.write", load=Post, if_match=True)
    arguments = blp.arguments(PostUpdateSchema)
    response = blp.response(200, PostSchema)

    def view(cls: Any) -> Any:
        return cls.as_view("probe")

    assert brand_route_of(view(_view_class(preamble, arguments, response)), "PATCH")
    # Without it, or with the body parsed before it (its checks would come after the parsing).
    assert brand_route_of(view(_view_class(arguments, response)), "PATCH") is None
    assert brand_route_of(view(_view_class(arguments, preamble, response)), "PATCH") is None


def test_each_loaded_object_is_named_in_the_path(app):
    for method, path, view in _brand_routes(app):
        route = brand_route_of(view, method)
        if route is not None and route.load is not None:
            assert "{" + PATH_OBJECTS[route.load].path_arg + "}" in path, (method, path)


# -- If-Match on every change ---------------------------------------------------------------------


def test_every_change_of_an_existing_object_takes_if_match(app):
    changes = {
        f"{method} {path}": brand_route_of(view, method)
        for method, path, view in _brand_routes(app)
        if method in CHANGES
    }
    without = sorted(key for key, route in changes.items() if not (route and route.if_match))
    assert without == sorted(WITHOUT_IF_MATCH), (
        "Each change of a post, brand, account or media takes `if_match=True` on its "
        "brand_route; any other change is listed in WITHOUT_IF_MATCH with the reason.\n"
        f"Without If-Match but not listed: {sorted(set(without) - set(WITHOUT_IF_MATCH))}\n"
        f"Listed but taking If-Match (or gone): {sorted(set(WITHOUT_IF_MATCH) - set(without))}"
    )
    # The spec says so where it is honoured, and nowhere else.
    for op in spec_operations():
        if op.brand_scoped and op.method in CHANGES:
            documented = any(p.get("name") == "If-Match" for p in op.spec.get("parameters", []))
            assert documented == (op.key not in WITHOUT_IF_MATCH), op.key
            assert ("412" in op.spec["responses"]) == documented, op.key


def _if_match_operations() -> list[Any]:
    return [
        op
        for op in spec_operations()
        if op.brand_scoped
        and any(p.get("name") == "If-Match" for p in op.spec.get("parameters", []))
    ]


def _object_url(app: Any, op: Any, url: str) -> str:
    """The URL of the object whose ETag the operation's If-Match takes (the brand's, or the
    object the path names)."""
    view = app.view_functions[app.url_map.bind("").match(url.split("?")[0], method=op.method)[0]]
    route = brand_route_of(view, op.method)
    assert route is not None and route.if_match, op.key
    segments = url.split("?")[0].split("/")
    if route.load is None:
        return "/".join(segments[:4])  # /v1/brands/<brand_id>
    position = op.path.split("/").index("{" + PATH_OBJECTS[route.load].path_arg + "}")
    return "/".join(segments[: position + 1])


def test_a_stale_if_match_is_a_412_and_changes_nothing(
    app, client, database, make_agency, invite_user
):
    world = build_world(client, make_agency, invite_user, "IfMatch")
    owner = world.headers("owner")
    operations = _if_match_operations()
    assert len(operations) >= 20
    problems = []
    for op in operations:
        # A brand of its own for each operation: the checks below go on to make the change.
        made = client.post("/v1/brands", json={"name": f"If-Match {op.key}"}, headers=owner)
        assert made.status_code == 201, made.get_json()
        call = prepare_call(op, world, made.get_json()["id"])
        read = client.get(_object_url(app, op, call.url), headers=owner)
        assert read.status_code == 200 and read.headers.get("ETag"), (op.key, read.get_json())
        current = read.headers["ETag"]

        before = snapshot(database.owner_url, world.agency_id)
        stale = client.open(
            call.url,
            method=op.method,
            json=call.body,
            headers={**owner, "If-Match": '"an-older-version"'},
        )
        after = snapshot(database.owner_url, world.agency_id)
        if stale.status_code != 412 or stale.mimetype != PROBLEM_JSON:
            problems.append(f"{op.key}: {stale.status_code} {stale.mimetype} to a stale If-Match")
        elif stale.headers.get("ETag") != current:
            problems.append(f"{op.key}: the 412 names {stale.headers.get('ETag')}, not {current}")
        changed = [table for table in before if before[table] != after[table]]
        if changed:
            problems.append(f"{op.key}: a stale If-Match changed {changed}")

        # The same call with the current ETag passes the check (whatever the change then says).
        fresh = client.open(
            call.url, method=op.method, json=call.body, headers={**owner, "If-Match": current}
        )
        if fresh.status_code == 412:
            problems.append(f"{op.key}: 412 with the current ETag {current}")
    assert not problems, "\n".join(problems)


# -- nothing of the body is read before the 404 and the 403 ----------------------------------------


class BodyThatMustNotBeRead(io.RawIOBase):
    """A request body: reading any of it fails the test."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body was read before the caller's access was checked")


def _content_type(op: Any) -> str:
    content = op.spec["requestBody"]["content"]
    if "application/json" in content:
        return "application/json"
    if "multipart/form-data" in content:
        return "multipart/form-data; boundary=relais"
    return next(iter(content))


def _send_unread(client: Any, op: Any, url: str, headers: dict[str, str], length: int) -> Any:
    return client.open(
        url,
        method=op.method,
        headers=headers,
        content_type=_content_type(op),
        environ_overrides={"wsgi.input": BodyThatMustNotBeRead(), "CONTENT_LENGTH": str(length)},
    )


@pytest.fixture
def two_agencies(client, make_agency, invite_user):
    return (
        build_world(client, make_agency, invite_user, "Reader"),
        build_world(client, make_agency, invite_user, "Other"),
    )


def test_no_body_is_read_before_the_404_or_the_403(client, two_agencies, monkeypatch):
    a, b = two_agencies
    operations = [op for op in spec_operations() if op.brand_scoped and "requestBody" in op.spec]
    assert len(operations) >= 15
    problems = []
    calls = [(op, prepare_call(op, a, a.brands[0])) for op in operations]
    for op, call in calls:
        # Another agency's brand and objects: 404, whatever the body would have said.
        response = _send_unread(client, op, call.url, b.headers("owner"), length=1000)
        if response.status_code != 404:
            problems.append(f"{op.key}: {response.status_code} for another agency, not 404")

    # The caller's own brand and objects, without the permission: 403, the body still unread.
    monkeypatch.setattr(permissions, "can", lambda *args, **kwargs: False)
    for op, call in calls:
        response = _send_unread(client, op, call.url, a.headers("owner"), length=1000)
        if response.status_code != 403:
            problems.append(f"{op.key}: {response.status_code} without the permission, not 403")
    assert not problems, "\n".join(problems)


def test_a_100_mb_upload_to_a_brand_out_of_reach_is_refused_unread(
    client, make_agency, invite_user
):
    alice, bob = make_agency("Alice"), make_agency("Bob")
    outsider = invite_user(alice, brand_id=alice.brands[0], brand_role="client")
    upload = next(op for op in spec_operations() if op.key == "POST /v1/brands/{brand_id}/media")
    url = f"/v1/brands/{alice.brands[0]}/media"
    for headers, status in ((bob.headers, 404), (outsider.headers, 403)):
        for extra in ({}, {"Idempotency-Key": "upload-1"}):
            response = _send_unread(client, upload, url, {**headers, **extra}, length=100_000_000)
            assert response.status_code == status, response.get_json()
            assert response.mimetype == PROBLEM_JSON
