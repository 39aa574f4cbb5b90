"""Brand members: agency staff given a role on one brand."""

from __future__ import annotations

from tests.helpers import assert_problem


def _members_url(brand_id: str) -> str:
    return f"/v1/brands/{brand_id}/members"


def test_add_change_and_remove_a_brand_member(client, make_agency, invite_user):
    owner = make_agency(brands=2)
    brand_id = owner.brands[0]
    member = invite_user(owner, agency_role="member")
    assert client.get("/v1/brands", headers=member.headers).get_json()["items"] == []

    added = client.post(
        _members_url(brand_id),
        json={"user_id": member.user_id, "role": "editor"},
        headers=owner.headers,
    )
    assert added.status_code == 201, added.get_json()
    membership = added.get_json()
    assert membership["id"].startswith("bmb_")
    assert (membership["email"], membership["role"]) == (member.email, "editor")
    reached = client.get("/v1/brands", headers=member.headers).get_json()["items"]
    assert [b["id"] for b in reached] == [brand_id]

    listed = client.get(_members_url(brand_id), headers=owner.headers).get_json()["items"]
    assert [m["user_id"] for m in listed] == [member.user_id]

    url = f"{_members_url(brand_id)}/{membership['id']}"
    changed = client.patch(url, json={"role": "manager"}, headers=owner.headers)
    assert changed.get_json()["role"] == "manager"
    assert client.get(url, headers=owner.headers).get_json()["role"] == "manager"
    me = client.get("/v1/me", headers=member.headers).get_json()
    assert me["access"]["brand_roles"] == {brand_id: "manager"}

    assert client.delete(url, headers=owner.headers).status_code == 204
    assert_problem(client.get(url, headers=owner.headers), 404)
    assert client.get("/v1/brands", headers=member.headers).get_json()["items"] == []


def test_adding_twice_is_409(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    member = invite_user(owner, agency_role="member")
    body = {"user_id": member.user_id, "role": "editor"}
    assert (
        client.post(_members_url(owner.brands[0]), json=body, headers=owner.headers).status_code
        == 201
    )
    again = client.post(_members_url(owner.brands[0]), json=body, headers=owner.headers)
    assert "user_id" in assert_problem(again, 409)["errors"]


def test_only_agency_staff_can_be_added(client, make_agency):
    owner = make_agency(brands=1)
    stranger = make_agency(brands=0)
    response = client.post(
        _members_url(owner.brands[0]),
        json={"user_id": stranger.user_id, "role": "client"},
        headers=owner.headers,
    )
    # Someone else's user is, for this agency, no one: a 404 (as for an id in a path).
    assert "user_id" in assert_problem(response, 404)["errors"]


def test_bad_role_is_422(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    member = invite_user(owner, agency_role="member")
    response = client.post(
        _members_url(owner.brands[0]),
        json={"user_id": member.user_id, "role": "boss"},
        headers=owner.headers,
    )
    assert "role" in assert_problem(response, 422)["errors"]


def test_a_membership_is_only_found_under_its_own_brand(client, make_agency, invite_user):
    owner = make_agency(brands=2)
    first, second = owner.brands
    brand_client = invite_user(owner, brand_id=first, brand_role="client")
    membership = client.get(_members_url(first), headers=owner.headers).get_json()["items"][0]
    assert membership["user_id"] == brand_client.user_id
    wrong = f"{_members_url(second)}/{membership['id']}"
    assert_problem(client.get(wrong, headers=owner.headers), 404)
    assert_problem(client.patch(wrong, json={"role": "manager"}, headers=owner.headers), 404)
    assert_problem(client.delete(wrong, headers=owner.headers), 404)


def test_managers_manage_their_brand_and_clients_do_not(client, make_agency, invite_user):
    owner = make_agency(brands=2)
    brand_id = owner.brands[0]
    manager = invite_user(owner, brand_id=brand_id, brand_role="manager")
    brand_client = invite_user(owner, brand_id=brand_id, brand_role="client")
    assert client.get(_members_url(brand_id), headers=manager.headers).status_code == 200
    assert_problem(client.get(_members_url(owner.brands[1]), headers=manager.headers), 404)
    assert_problem(client.get(_members_url(brand_id), headers=brand_client.headers), 403)


def test_removing_someone_from_the_agency_takes_their_brand_roles(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    member = invite_user(owner, agency_role="member")
    client.post(
        _members_url(owner.brands[0]),
        json={"user_id": member.user_id, "role": "editor"},
        headers=owner.headers,
    )
    staff = client.get("/v1/agency/members", headers=owner.headers).get_json()["items"]
    membership = next(m for m in staff if m["user_id"] == member.user_id)
    removed = client.delete(f"/v1/agency/members/{membership['id']}", headers=owner.headers)
    assert removed.status_code == 204
    assert (
        client.get(_members_url(owner.brands[0]), headers=owner.headers).get_json()["items"] == []
    )
    # Their tokens stop working at once, and they can neither refresh nor sign in.
    assert_problem(client.get("/v1/me", headers=member.headers), 401)
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token})
    assert_problem(refreshed, 401)
    signin = client.post(
        "/v1/auth/token", json={"email": member.email, "password": member.password}
    )
    assert_problem(signin, 401)
