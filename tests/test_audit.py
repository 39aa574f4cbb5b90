"""The audit trail records every mutation with its actor, address and request id."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import select

from app.models import AuditEvent
from tests.conftest import PASSWORD, invitation_token
from tests.helpers import assert_problem, owner_connection


def _events(client, actor, **query):
    response = client.get(
        "/v1/audit-events", query_string={"limit": 200, **query}, headers=actor.headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def _only(events, action):
    found = [e for e in events if e["action"] == action]
    assert len(found) == 1, (action, [e["action"] for e in events])
    return found[0]


def test_mutations_are_recorded_with_actor_and_request_id(client, make_agency):
    owner = make_agency(brands=0)

    def call(method, path, request_id, **kwargs):
        response = getattr(client, method)(
            path, headers={**owner.headers, "X-Request-Id": request_id}, **kwargs
        )
        assert response.status_code < 300, response.get_data(as_text=True)
        return response.get_json(silent=True)

    brand = call("post", "/v1/brands", "req-create", json={"name": "Audited"})
    call("patch", f"/v1/brands/{brand['id']}", "req-update", json={"timezone": "Europe/Paris"})
    call("post", f"/v1/brands/{brand['id']}/archive", "req-archive")
    call("post", f"/v1/brands/{brand['id']}/unarchive", "req-unarchive")
    key = call("post", "/v1/api-keys", "req-key", json={"name": "ci"})
    call("delete", f"/v1/api-keys/{key['id']}", "req-revoke")
    invitation = call(
        "post",
        "/v1/invitations",
        "req-invite",
        json={"email": "c@example.com", "brand_id": brand["id"], "brand_role": "client"},
    )
    call("delete", f"/v1/invitations/{invitation['id']}", "req-uninvite")
    call("get", f"/v1/brands/{brand['id']}/export", "req-export")

    events = _events(client, owner)
    expected = {
        "brand.created": ("req-create", "brand", brand["id"]),
        "brand.updated": ("req-update", "brand", brand["id"]),
        "brand.archived": ("req-archive", "brand", brand["id"]),
        "brand.unarchived": ("req-unarchive", "brand", brand["id"]),
        "api_key.created": ("req-key", "api_key", key["id"]),
        "api_key.revoked": ("req-revoke", "api_key", key["id"]),
        "invitation.created": ("req-invite", "invitation", invitation["id"]),
        "invitation.revoked": ("req-uninvite", "invitation", invitation["id"]),
        "brand.exported": ("req-export", "brand", brand["id"]),
    }
    for action, (request_id, target_type, target_id) in expected.items():
        event = _only(events, action)
        assert event["actor_type"] == "user", action
        assert event["actor_id"] == owner.user_id, action
        assert event["request_id"] == request_id, action
        assert (event["target_type"], event["target_id"]) == (target_type, target_id), action
    assert _only(events, "brand.updated")["data"] == {"fields": ["timezone"]}
    assert _only(events, "brand.created")["brand_id"] == brand["id"]
    # Oldest first, ids are opaque.
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(e["id"].startswith("evt_") for e in events)


def test_signup_and_acceptance_are_recorded_as_the_person(client, make_agency, invite_user):
    owner = make_agency(brands=0)
    member = invite_user(owner, agency_role="member")
    events = _events(client, owner)
    created = _only(events, "agency.created")
    assert (created["actor_type"], created["actor_id"]) == ("user", owner.user_id)
    accepted = _only(events, "invitation.accepted")
    assert (accepted["actor_type"], accepted["actor_id"]) == ("user", member.user_id)


def test_api_key_actions_are_recorded_as_the_key(client, make_agency):
    owner = make_agency(brands=0)
    key = client.post("/v1/api-keys", json={"name": "bot"}, headers=owner.headers).get_json()
    made = client.post(
        "/v1/brands",
        json={"name": "By key"},
        headers={"X-API-Key": key["key"], "X-Request-Id": "bot-1"},
    )
    assert made.status_code == 201
    event = _only(_events(client, owner), "brand.created")
    assert (event["actor_type"], event["actor_id"]) == ("api_key", key["id"])
    assert event["request_id"] == "bot-1"


def test_offboarding_is_recorded_after_the_brand_rows_are_gone(client, make_agency):
    owner = make_agency(brands=1)
    brand_id = owner.brands[0]
    assert client.delete(f"/v1/brands/{brand_id}", headers=owner.headers).status_code == 204
    events = _events(client, owner)
    event = _only(events, "brand.offboarded")
    assert event["target_id"] == brand_id and event["actor_id"] == owner.user_id
    assert event["brand_id"] is None
    # Everything stored under the brand went with it.
    assert all(e["brand_id"] != brand_id for e in events)


def test_member_and_role_changes_are_recorded(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    member = invite_user(owner, agency_role="member")
    memberships = client.get("/v1/agency/members", headers=owner.headers).get_json()["items"]
    membership = next(m for m in memberships if m["user_id"] == member.user_id)
    client.patch(
        f"/v1/agency/members/{membership['id']}", json={"role": "admin"}, headers=owner.headers
    )
    added = client.post(
        f"/v1/brands/{owner.brands[0]}/members",
        json={"user_id": member.user_id, "role": "editor"},
        headers=owner.headers,
    )
    assert added.status_code == 201, added.get_json()
    events = _events(client, owner)
    changed = _only(events, "agency.member_role_changed")
    assert changed["data"] == {"from": "member", "to": "admin", "user_id": member.user_id}
    assert _only(events, "brand.member_added")["brand_id"] == owner.brands[0]


def test_audit_trail_filters_by_brand_and_action(client, make_agency):
    owner = make_agency(brands=2)
    first = _events(client, owner, brand_id=owner.brands[0])
    assert {e["brand_id"] for e in first} == {owner.brands[0]}
    created = _events(client, owner, action="brand.created")
    assert len(created) == 2


def test_audit_trail_is_for_owners_and_admins_of_this_agency(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    other = make_agency(brands=1)
    member = invite_user(owner, agency_role="member")
    assert_problem(client.get("/v1/audit-events", headers=member.headers), 403)
    theirs = _events(client, other)
    assert theirs and all(e["actor_id"] != owner.user_id for e in theirs)
    assert all(e["brand_id"] in (None, other.brands[0]) for e in theirs)


def _stored(database, action, target_id):
    with owner_connection(database) as connection:
        return tuple(
            connection.execute(
                select(
                    AuditEvent.actor_type, AuditEvent.actor_id, AuditEvent.ip, AuditEvent.request_id
                ).where(AuditEvent.action == action, AuditEvent.target_id == target_id)
            ).one()
        )


def test_events_keep_the_address_and_request_they_came_through(client, make_agency, database):
    owner = make_agency(brands=0)
    made = client.post(
        "/v1/brands",
        json={"name": "From afar"},
        headers={**owner.headers, "X-Request-Id": "addr-1"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert made.status_code == 201, made.get_json()
    stored = _stored(database, "brand.created", made.get_json()["id"])
    assert stored == ("user", owner.user_id, "198.51.100.7", "addr-1")


def test_a_public_route_records_the_person_it_comes_to_know(client, make_agency, database):
    # Nobody is signed in when an invitation is accepted: the event names the invitee, with the
    # address and request id of the acceptance.
    owner = make_agency(brands=0)
    invited = client.post(
        "/v1/invitations",
        json={"email": "late@example.com", "agency_role": "member"},
        headers=owner.headers,
    ).get_json()
    accepted = client.post(
        "/v1/invitations/accept",
        json={
            "token": invitation_token(client, "late@example.com"),
            "name": "Late",
            "password": PASSWORD,
        },
        headers={"X-Request-Id": "accept-1"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert accepted.status_code == 200, accepted.get_json()
    actor_type, actor_id, ip, request_id = _stored(database, "invitation.accepted", invited["id"])
    assert (actor_type, ip, request_id) == ("user", "203.0.113.9", "accept-1")
    assert actor_id and actor_id != owner.user_id


def test_services_never_read_the_request():
    # Who acts and from where reach the services as an `audit.Actor` built by the view; a
    # service reading flask's `g` or `request` would work in a request and silently record
    # nothing (or the wrong caller) from a job.
    services = Path(__file__).resolve().parent.parent / "app" / "services"
    readers = []
    for path in sorted(services.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                readers += [
                    f"{path.name}: {a.name}" for a in node.names if a.name in ("g", "request")
                ]
    assert not readers
