"""Role matrix: every role × every operation of the spec → ok, 403 or 404, as designed.

The design (DESIGN.md, app/auth/permissions.py): agency owners and admins reach every brand;
members reach only the brands they are given; brand managers run their brand, editors write
posts, approvers review them; a brand's client reads the brand and approves its posts, nothing
else, and sees only the posts the agency has put before them (POST_STATES) and their media;
an unrestricted API key acts as an admin and a brand-limited key as a manager of its
brands, but keys never manage keys or people, nor read people data (member lists, the audit
trail, invitations, a brand's export). A role with no role on a brand gets 404 there.

Each cell is called on a fresh object of world brand 0 (the brand the brand roles are on).
A new operation in the spec with no row here fails `test_every_operation_has_a_row`.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.models import Post, PostStatus
from tests.matrix_requests import Call, prepare_call
from tests.openapi_operations import Operation, spec_operations
from tests.tenant_data import snapshot, tenant_models
from tests.world import BRAND_LIMITED_ROLES, FRESH_KEY_PREFIX, ROLES, World, build_world

# ok  = past tenancy and permissions: 2xx, or a domain answer (409 wrong state, 422 bad input)
# 403 = the role sees the object but may not do this
# 404 = the role does not reach the object (a brand it has no role on)
# Columns:    owner admin member | manager editor approver client | key key_brand
PUBLIC = "public"
# The table is aligned by hand so a column reads as one role.
# fmt: off
EXPECTED: dict[str, str] = {
    # -- the API's root and identity (no credentials needed)
    "GET /v1":                                          PUBLIC,
    "POST /v1/signup":                                  PUBLIC,
    "POST /v1/signup/verify":                           PUBLIC,
    "POST /v1/auth/token":                              PUBLIC,
    "POST /v1/auth/refresh":                            PUBLIC,
    "POST /v1/auth/logout":                             PUBLIC,
    "POST /v1/auth/password-reset":                     PUBLIC,
    "POST /v1/auth/password-reset/confirm":             PUBLIC,
    "POST /v1/invitations/accept":                      PUBLIC,
    "POST /v1/invitations/preview":                     PUBLIC,
    "GET /v1/me":                                       "ok  ok  ok  | ok  ok  ok  ok  | ok  ok",
    "POST /v1/me/password":                             "ok  ok  ok  | ok  ok  ok  ok  | 403 403",
    # -- the agency and its staff
    "GET /v1/agency":                                   "ok  ok  ok  | ok  ok  ok  403 | ok  403",
    "PATCH /v1/agency":                                 "ok  403 403 | 403 403 403 403 | 403 403",
    "GET /v1/agency/members":                           "ok  ok  403 | 403 403 403 403 | 403 403",
    "GET /v1/agency/members/{membership_id}":           "ok  ok  403 | 403 403 403 403 | 403 403",
    "PATCH /v1/agency/members/{membership_id}":         "ok  ok  403 | 403 403 403 403 | 403 403",
    "DELETE /v1/agency/members/{membership_id}":        "ok  ok  403 | 403 403 403 403 | 403 403",
    "GET /v1/api-keys":                                 "ok  ok  403 | 403 403 403 403 | 403 403",
    "POST /v1/api-keys":                                "ok  ok  403 | 403 403 403 403 | 403 403",
    "GET /v1/api-keys/{key_id}":                        "ok  ok  403 | 403 403 403 403 | 403 403",
    "DELETE /v1/api-keys/{key_id}":                     "ok  ok  403 | 403 403 403 403 | 403 403",
    "GET /v1/audit-events":                             "ok  ok  403 | 403 403 403 403 | 403 403",
    # -- outgoing webhooks: agency-wide roles (owners, admins, unrestricted keys) only
    "GET /v1/webhook-endpoints":                        "ok  ok  403 | 403 403 403 403 | ok  403",
    "POST /v1/webhook-endpoints":                       "ok  ok  403 | 403 403 403 403 | ok  403",
    "GET /v1/webhook-endpoints/{endpoint_id}":          "ok  ok  403 | 403 403 403 403 | ok  403",
    "PATCH /v1/webhook-endpoints/{endpoint_id}":        "ok  ok  403 | 403 403 403 403 | ok  403",
    "DELETE /v1/webhook-endpoints/{endpoint_id}":       "ok  ok  403 | 403 403 403 403 | ok  403",
    "POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret":
                                                        "ok  ok  403 | 403 403 403 403 | ok  403",
    "POST /v1/webhook-endpoints/{endpoint_id}/test":    "ok  ok  403 | 403 403 403 403 | ok  403",
    "GET /v1/webhook-endpoints/{endpoint_id}/deliveries":
                                                        "ok  ok  403 | 403 403 403 403 | ok  403",
    "POST /v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver":
                                                        "ok  ok  403 | 403 403 403 403 | ok  403",
    # -- invitations (the fresh invitation is to brand 0)
    "GET /v1/invitations":                              "ok  ok  403 | ok  403 403 403 | 403 403",
    "POST /v1/invitations":                             "ok  ok  404 | ok  403 403 403 | 403 403",
    "GET /v1/invitations/{invitation_id}":              "ok  ok  404 | ok  403 403 403 | 403 403",
    "DELETE /v1/invitations/{invitation_id}":           "ok  ok  404 | ok  403 403 403 | 403 403",
    # -- brands
    "GET /v1/brands":                                   "ok  ok  ok  | ok  ok  ok  ok  | ok  ok",
    "POST /v1/brands":                                  "ok  ok  403 | 403 403 403 403 | ok  403",
    "GET /v1/brands/{brand_id}":                        "ok  ok  404 | ok  ok  ok  ok  | ok  ok",
    "PATCH /v1/brands/{brand_id}":                      "ok  ok  404 | ok  403 403 403 | ok  ok",
    "DELETE /v1/brands/{brand_id}":                     "ok  ok  404 | 403 403 403 403 | ok  403",
    "POST /v1/brands/{brand_id}/archive":               "ok  ok  404 | 403 403 403 403 | ok  403",
    "POST /v1/brands/{brand_id}/unarchive":             "ok  ok  404 | 403 403 403 403 | ok  403",
    "GET /v1/brands/{brand_id}/export":                 "ok  ok  404 | ok  403 403 403 | 403 403",
    "GET /v1/brands/{brand_id}/members":                "ok  ok  404 | ok  403 403 403 | 403 403",
    "POST /v1/brands/{brand_id}/members":               "ok  ok  404 | ok  403 403 403 | 403 403",
    "GET /v1/brands/{brand_id}/members/{membership_id}": "ok  ok  404 | ok  403 403 403 | 403 403",
    "PATCH /v1/brands/{brand_id}/members/{membership_id}": "ok ok 404 | ok  403 403 403 | 403 403",
    "DELETE /v1/brands/{brand_id}/members/{membership_id}": "ok ok 404 | ok 403 403 403 | 403 403",
    # -- scheduling
    "GET /v1/brands/{brand_id}/posting-slots":          "ok  ok  404 | ok  ok  ok  ok  | ok  ok",
    "PUT /v1/brands/{brand_id}/posting-slots":          "ok  ok  404 | ok  403 403 403 | ok  ok",
    "GET /v1/brands/{brand_id}/calendar":               "ok  ok  404 | ok  ok  ok  ok  | ok  ok",
    # -- social accounts (staff read them; managers connect and manage them)
    "GET /v1/brands/{brand_id}/accounts":               "ok  ok  404 | ok  ok  ok  403 | ok  ok",
    "POST /v1/brands/{brand_id}/accounts":              "ok  ok  404 | ok  403 403 403 | ok  ok",
    "POST /v1/brands/{brand_id}/accounts/connect":      "ok  ok  404 | ok  403 403 403 | ok  ok",
    "POST /v1/brands/{brand_id}/accounts/callback":     "ok  ok  404 | ok  403 403 403 | ok  ok",
    "GET /v1/brands/{brand_id}/accounts/{account_id}":  "ok  ok  404 | ok  ok  ok  403 | ok  ok",
    "PATCH /v1/brands/{brand_id}/accounts/{account_id}": "ok ok  404 | ok  403 403 403 | ok  ok",
    "DELETE /v1/brands/{brand_id}/accounts/{account_id}": "ok ok 404 | ok  403 403 403 | ok  ok",
    "POST /v1/brands/{brand_id}/accounts/{account_id}/reconnect":
                                                        "ok  ok  404 | ok  403 403 403 | ok  ok",
    # -- media (a fresh item no post uses: the brand's client sees only media of posts they see)
    "GET /v1/brands/{brand_id}/media":                  "ok  ok  404 | ok  ok  ok  ok  | ok  ok",
    "POST /v1/brands/{brand_id}/media":                 "ok  ok  404 | ok  ok  403 403 | ok  ok",
    "GET /v1/brands/{brand_id}/media/{media_id}":       "ok  ok  404 | ok  ok  ok  404 | ok  ok",
    "PATCH /v1/brands/{brand_id}/media/{media_id}":     "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "DELETE /v1/brands/{brand_id}/media/{media_id}":    "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "GET /v1/brands/{brand_id}/media/{media_id}/content": "ok ok  404 | ok  ok  ok  404 | ok  ok",
    # A signed link is its own credential (tests/test_media.py covers forged and expired ones).
    "GET /v1/media-files/{token}":                      PUBLIC,
    # -- posts (a fresh draft, which the brand's client does not see: 404 for them on every
    #    route of it; SCENARIOS has posts in review, and every post read in every state)
    "GET /v1/brands/{brand_id}/posts":                  "ok  ok  404 | ok  ok  ok  ok  | ok  ok",
    "POST /v1/brands/{brand_id}/posts":                 "ok  ok  404 | ok  ok  403 403 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/import":          "ok  ok  404 | ok  ok  403 403 | ok  ok",
    "GET /v1/brands/{brand_id}/posts/{post_id}":        "ok  ok  404 | ok  ok  ok  404 | ok  ok",
    "PATCH /v1/brands/{brand_id}/posts/{post_id}":      "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "DELETE /v1/brands/{brand_id}/posts/{post_id}":     "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "GET /v1/brands/{brand_id}/posts/{post_id}/activity": "ok ok  404 | ok  ok  ok  404 | ok  ok",
    "GET /v1/brands/{brand_id}/posts/{post_id}/deliveries": "ok ok 404 | ok  ok  ok  404 | ok  ok",
    "GET /v1/brands/{brand_id}/posts/{post_id}/variants": "ok ok  404 | ok  ok  ok  404 | ok  ok",
    "PUT /v1/brands/{brand_id}/posts/{post_id}/variants/{account_id}":
                                                        "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "DELETE /v1/brands/{brand_id}/posts/{post_id}/variants/{account_id}":
                                                        "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/submit": "ok ok  404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/approve": "ok ok  404 | ok  403 ok  404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/reject": "ok ok  404 | ok  403 ok  404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/cancel": "ok ok  404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/delete-from-network":
                                                        "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/schedule": "ok ok 404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/queue":  "ok ok  404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/publish-now":
                                                        "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/reschedule":
                                                        "ok  ok  404 | ok  ok  403 404 | ok  ok",
    "POST /v1/brands/{brand_id}/posts/{post_id}/unschedule":
                                                        "ok  ok  404 | ok  ok  403 404 | ok  ok",
}
# fmt: on

# The same operation on an object in a given state, where the state decides who may act.
# Brand 0 asks its client (approval mode `internal_and_client`).
SCENARIOS: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (operation, Post columns of the fresh post, expected row)
    "approve, internal step": (
        "POST /v1/brands/{brand_id}/posts/{post_id}/approve",
        {"status": "in_review", "approval_stage": "internal"},
        "ok  ok  404 | ok  403 ok  404 | ok  ok",
    ),
    "approve, client step": (
        "POST /v1/brands/{brand_id}/posts/{post_id}/approve",
        {"status": "in_review", "approval_stage": "client"},
        "403 403 404 | 403 403 403 ok  | 403 403",
    ),
    "reject, client step": (
        "POST /v1/brands/{brand_id}/posts/{post_id}/reject",
        {"status": "in_review", "approval_stage": "client"},
        "403 403 404 | 403 403 403 ok  | 403 403",
    ),
}

# Who reads a post in each state: the brand's client only what the agency has put before them,
# a post waiting for their approval and every post from approval on (app/services/lifecycle.py,
# CLIENT_VISIBLE_STATUSES); any other post is a 404 for them, as if it did not exist.
SEEN_BY_ALL = "ok  ok  404 | ok  ok  ok  ok  | ok  ok"
NOT_BY_CLIENT = "ok  ok  404 | ok  ok  ok  404 | ok  ok"
POST_STATES: dict[str, tuple[dict[str, Any], str]] = {
    "draft": ({"status": "draft"}, NOT_BY_CLIENT),
    "in internal review": ({"status": "in_review", "approval_stage": "internal"}, NOT_BY_CLIENT),
    "waiting for the client": ({"status": "in_review", "approval_stage": "client"}, SEEN_BY_ALL),
    "approved": ({"status": "approved"}, SEEN_BY_ALL),
    "scheduled": ({"status": "scheduled"}, SEEN_BY_ALL),
    "publishing": ({"status": "publishing"}, SEEN_BY_ALL),
    "published": ({"status": "published"}, SEEN_BY_ALL),
    "partially published": ({"status": "partially_published"}, SEEN_BY_ALL),
    "failed": ({"status": "failed"}, SEEN_BY_ALL),
    "unknown": ({"status": "unknown"}, SEEN_BY_ALL),
    # Back with the agency, edited like a draft (even when the client rejected it).
    "rejected": ({"status": "rejected"}, NOT_BY_CLIENT),
    # Withdrawn; drafts and posts in internal review can be cancelled too.
    "cancelled": ({"status": "cancelled"}, NOT_BY_CLIENT),
}
# Every read of one post: by id in every state, the others in a state on each side of the rule
# (tests/test_client_visibility.py reads them all in every state, as the client).
POST_READS = {
    "GET /v1/brands/{brand_id}/posts/{post_id}": list(POST_STATES),
    "GET /v1/brands/{brand_id}/posts/{post_id}/activity": ["in internal review", "published"],
    "GET /v1/brands/{brand_id}/posts/{post_id}/deliveries": ["rejected", "failed"],
    "GET /v1/brands/{brand_id}/posts/{post_id}/variants": ["draft", "waiting for the client"],
}
SCENARIOS.update(
    {
        f"{key.split('{post_id}')[1] or 'read'}, {state}": (key, *POST_STATES[state])
        for key, states in POST_READS.items()
        for state in states
    }
)


def _row(spec: str) -> dict[str, str]:
    cells = [c for c in spec.split() if c != "|"]
    assert len(cells) == len(ROLES), f"a row needs {len(ROLES)} cells: {spec!r}"
    return dict(zip(ROLES, cells, strict=True))


def _outcome(status: int) -> str:
    if status in (401, 403, 404) or status >= 500:
        return str(status)
    return "ok"


class Arena:
    """A world that is rebuilt when a call changed what the next calls rely on."""

    def __init__(self, client, make_agency, invite_user, owner_url: str) -> None:
        self._build = lambda: build_world(
            client, make_agency, invite_user, "Roles", approval_mode="internal_and_client"
        )
        self._engine = create_engine(owner_url, poolclass=NullPool)
        self.rebuilds = 0
        self.world = self._build()
        self._print = self._fingerprint()

    def _fingerprint(self) -> tuple:
        w = self.world
        users = [a.user_id for a in w.actors.values() if a.user_id]
        with self._engine.connect() as conn:
            brand = conn.execute(
                text("SELECT version, status FROM brands WHERE id = :b"), {"b": w.brands[0]}
            ).all()
            roles = conn.execute(
                text(
                    "SELECT user_id, role, NULL FROM agency_memberships WHERE agency_id = :a "
                    "UNION ALL SELECT user_id, role, brand_id FROM brand_memberships "
                    "WHERE agency_id = :a ORDER BY 1, 2"
                ),
                {"a": w.agency_id},
            ).all()
            keys = conn.execute(
                text(
                    "SELECT id, revoked_at, brand_ids FROM api_keys WHERE agency_id = :a "
                    "AND prefix <> :fresh ORDER BY id"
                ),
                {"a": w.agency_id, "fresh": FRESH_KEY_PREFIX},
            ).all()
        return brand, [r for r in roles if r[0] in users], keys

    def settle(self, op: Operation, status: int) -> None:
        if op.writes and status < 400 and self._fingerprint() != self._print:
            self.world = self._build()
            self._print = self._fingerprint()
            self.rebuilds += 1

    def close(self) -> None:
        self._engine.dispose()


@pytest.fixture
def arena(client, make_agency, invite_user, database):
    arena = Arena(client, make_agency, invite_user, database.owner_url)
    yield arena
    arena.close()


def test_every_operation_has_a_row():
    in_spec = {op.key for op in spec_operations()}
    missing = sorted(in_spec - set(EXPECTED))
    stale = sorted(set(EXPECTED) - in_spec)
    assert not missing, (
        "Operations with no row in tests/test_roles.py EXPECTED (say, per role, whether it "
        "is allowed, 403 or 404, as app/auth/permissions.py designs it):\n" + "\n".join(missing)
    )
    assert not stale, f"Rows for operations no longer in the spec: {stale}"
    # A new post status needs a decision: does the brand's client see a post in it?
    assert {state["status"] for state, _ in POST_STATES.values()} == {s.value for s in PostStatus}
    for name, (key, _, row) in SCENARIOS.items():
        assert key in in_spec, f"scenario {name!r}: {key} is not in the spec"
        _row(row)
    for key, row in EXPECTED.items():
        is_public = (
            next(op.public for op in spec_operations() if op.key == key)
            if (key in in_spec)
            else None
        )
        if row == PUBLIC:
            assert is_public, f"{key} is marked public but the spec asks for credentials"
        else:
            assert not is_public, f"{key} is public in the spec; mark its row PUBLIC"
            _row(row)


def _run(client, arena: Arena, op: Operation, role: str, make_call) -> tuple[str, Call]:
    call = make_call(arena.world)
    response = call.send(client, arena.world.headers(role))
    arena.settle(op, response.status_code)
    return _outcome(response.status_code), call


def _report(rows: list[tuple[str, str, str, str]], cells: int) -> str:
    lines = [f"{len(rows)} of {cells} cells differ from the design:"]
    lines += [f"  {key} as {role}: expected {want}, got {got}" for key, role, want, got in rows]
    return "\n".join(lines)


def test_role_matrix(client, arena):
    operations = {op.key: op for op in spec_operations()}
    mismatches = []
    cells = 0
    for key, spec in EXPECTED.items():
        if spec == PUBLIC or key not in operations:
            continue
        op = operations[key]
        for role, want in _row(spec).items():
            got, call = _run(
                client, arena, op, role, lambda w, op=op: prepare_call(op, w, w.brands[0])
            )
            cells += 1
            if got != want:
                mismatches.append((key, role, want, f"{got} ({call.url})"))
    assert cells >= 9 * 40
    assert not mismatches, _report(mismatches, cells)


def test_role_matrix_scenarios(client, arena):
    operations = {op.key: op for op in spec_operations()}
    mismatches = []
    cells = 0
    for name, (key, post_state, spec) in SCENARIOS.items():
        op = operations[key]

        def make_call(w: World, op=op, post_state=post_state) -> Call:
            call = prepare_call(op, w, w.brands[0])
            post_id = w.new_generic(Post, w.brands[0], **post_state)
            fresh = call.url.split("/posts/")[1].split("/")[0]
            return Call(op, call.url.replace(fresh, post_id), call.body, call.sent_ids)

        for role, want in _row(spec).items():
            got, call = _run(client, arena, op, role, make_call)
            cells += 1
            if got != want:
                mismatches.append((f"{key} [{name}]", role, want, got))
    assert not mismatches, _report(mismatches, cells)


def test_a_role_on_one_brand_gets_404_on_the_others(client, arena):
    """Brand-limited roles (brand 0 only) get 404 on every brand route of brand 1."""
    world = arena.world
    other = world.brands[1]
    wrong = []
    cells = 0
    for op in spec_operations():
        if not op.brand_scoped:
            continue
        for role in BRAND_LIMITED_ROLES:
            call = prepare_call(op, world, other)
            status = call.send(client, world.headers(role)).status_code
            cells += 1
            if status != 404:
                wrong.append(f"  {op.key} as {role}: {status} ({call.url})")
    assert cells >= 6 * 30
    assert not wrong, f"{len(wrong)} of {cells} calls on another brand were not 404:\n" + "\n".join(
        wrong
    )


def test_a_role_on_one_brand_sees_nothing_of_the_others(client, arena, database):
    """Every read a brand-limited role may make (agency-wide lists included) shows no id of
    another brand's rows: lists filter, they do not just refuse."""
    world = arena.world
    other = world.brands[1]
    owner_id = world.actors["owner"].user_id
    for model in tenant_models():  # a row of brand 1 in every brand-owned table
        if "brand_id" in model.__table__.c and model.__tablename__ != "brands":
            with world.rows(other) as made:
                made.generic(model, user_id=owner_id)
    rows = snapshot(database.owner_url, world.agency_id)
    hidden = {other} | {
        row["id"]
        for table_rows in rows.values()
        for row in table_rows
        if row.get("brand_id") == other and isinstance(row.get("id"), str)
    }
    seen = []
    reads = 0
    for op in spec_operations():
        if op.method != "GET" or (op.path_params and not op.brand_scoped):
            continue
        for role in BRAND_LIMITED_ROLES:
            call = prepare_call(op, world, world.brands[0])
            response = call.send(client, world.headers(role))
            if response.status_code != 200:
                continue
            reads += 1
            shown = sorted(i for i in hidden if i in response.get_data(as_text=True))
            if shown:
                seen.append(f"  {op.key} as {role}: {', '.join(shown[:3])}")
    assert reads >= 6 * 10
    assert not seen, "brand-limited roles saw another brand's rows:\n" + "\n".join(seen)


def test_api_keys_read_no_people_data(client, arena):
    """People data is for people: no read an API key may make shows anyone's e-mail, nor the
    network address a person acted from (the audit trail keeps both)."""
    world = arena.world
    owner = world.actors["owner"]
    # An audit event of brand 0 from a recognisable address.
    renamed = client.patch(
        f"/v1/brands/{world.brands[0]}",
        json={"name": "Renamed"},
        headers=owner.headers,
        environ_base={"REMOTE_ADDR": "192.0.2.77"},
    )
    assert renamed.status_code == 200
    people = {a.email for a in world.actors.values() if a.email}
    assert len(people) == 7
    secrets = people | {"192.0.2.77", "@example.com"}
    seen = []
    reads = 0
    for op in spec_operations():
        if op.method != "GET":
            continue
        for role in ("key", "key_brand"):
            call = prepare_call(op, world, world.brands[0])
            response = call.send(client, world.headers(role))
            if response.status_code != 200:
                continue
            reads += 1
            text_ = response.get_data(as_text=True)
            shown = sorted(s for s in secrets if s in text_)
            if shown:
                seen.append(f"  {op.key} as {role}: {', '.join(shown)}")
    assert reads >= 2 * 15
    assert not seen, "API keys read people data:\n" + "\n".join(seen)
