"""Invitations to the agency (staff) and to one brand (clients): a token that expires."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.models import Invitation
from app.models.base import utcnow
from tests.conftest import PASSWORD, invitation_token
from tests.helpers import assert_problem, bearer, owner_connection


def _invite(client, inviter, **payload):
    response = client.post(
        "/v1/invitations", json={"email": "new@example.com", **payload}, headers=inviter.headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _token(client, invitation):
    return invitation_token(client, invitation["email"])


def _accept(client, token, password=PASSWORD, name="New Person"):
    payload = {"token": token, "password": password}
    if name:
        payload["name"] = name
    return client.post("/v1/invitations/accept", json=payload)


def test_agency_invitation_makes_a_staff_member(client, make_agency):
    owner = make_agency(brands=2)
    invitation = _invite(client, owner, agency_role="member")
    assert invitation["status"] == "pending"
    # The secret goes to the invited address only, never back to the inviter.
    assert "token" not in invitation and "accept_url" not in invitation

    accepted = _accept(client, _token(client, invitation))
    assert accepted.status_code == 200, accepted.get_json()
    me = client.get("/v1/me", headers=bearer(accepted.get_json()["access_token"])).get_json()
    assert me["user"]["email"] == "new@example.com"
    assert me["access"]["agency_role"] == "member"
    # A member reaches no brand until assigned to one.
    listed = client.get("/v1/brands", headers=bearer(accepted.get_json()["access_token"]))
    assert listed.get_json()["items"] == []

    shown = client.get(f"/v1/invitations/{invitation['id']}", headers=owner.headers).get_json()
    assert shown["status"] == "accepted"
    assert "token" not in shown


def test_brand_invitation_makes_a_client_of_that_brand_only(client, make_agency):
    owner = make_agency(brands=2)
    invitation = _invite(client, owner, brand_id=owner.brands[0], brand_role="client")
    tokens = _accept(client, _token(client, invitation)).get_json()
    headers = bearer(tokens["access_token"])
    listed = client.get("/v1/brands", headers=headers).get_json()
    assert [b["id"] for b in listed["items"]] == [owner.brands[0]]
    assert_problem(client.get(f"/v1/brands/{owner.brands[1]}", headers=headers), 404)
    assert_problem(
        client.patch(f"/v1/brands/{owner.brands[0]}", json={"name": "x"}, headers=headers), 403
    )


def test_new_account_needs_a_name_and_a_strong_password(client, make_agency):
    owner = make_agency(brands=0)
    invitation = _invite(client, owner, agency_role="member")
    assert (
        "name"
        in assert_problem(_accept(client, _token(client, invitation), name=None), 422)["errors"]
    )
    weak = _accept(client, _token(client, invitation), password="short")
    assert "password" in assert_problem(weak, 422)["errors"]
    # The invitation survived both failures.
    assert _accept(client, _token(client, invitation)).status_code == 200


def test_expired_invitation_is_409(client, make_agency, database):
    owner = make_agency(brands=0)
    invitation = _invite(client, owner, agency_role="member")
    with owner_connection(database) as connection:
        connection.execute(
            update(Invitation)
            .where(Invitation.id == invitation["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_problem(_accept(client, _token(client, invitation)), 409)
    shown = client.get(f"/v1/invitations/{invitation['id']}", headers=owner.headers).get_json()
    assert shown["status"] == "expired"


def test_revoked_invitation_is_404(client, make_agency):
    owner = make_agency(brands=0)
    invitation = _invite(client, owner, agency_role="member")
    assert (
        client.delete(f"/v1/invitations/{invitation['id']}", headers=owner.headers).status_code
        == 204
    )
    assert_problem(_accept(client, _token(client, invitation)), 404)
    shown = client.get(f"/v1/invitations/{invitation['id']}", headers=owner.headers).get_json()
    assert shown["status"] == "revoked"


def test_unknown_token_is_404(client):
    assert_problem(_accept(client, "inv_does-not-exist"), 404)


def test_accepting_twice_is_409(client, make_agency):
    owner = make_agency(brands=0)
    invitation = _invite(client, owner, agency_role="member")
    assert _accept(client, _token(client, invitation)).status_code == 200
    assert_problem(_accept(client, _token(client, invitation)), 409)
    # An accepted invitation cannot be revoked any more.
    assert_problem(client.delete(f"/v1/invitations/{invitation['id']}", headers=owner.headers), 409)


def test_existing_user_accepts_with_their_own_password(client, make_agency):
    owner = make_agency(brands=1)
    elsewhere = make_agency(brands=0)
    invitation = client.post(
        "/v1/invitations",
        json={"email": elsewhere.email, "brand_id": owner.brands[0], "brand_role": "approver"},
        headers=owner.headers,
    ).get_json()
    wrong = _accept(client, _token(client, invitation), password="not the password", name=None)
    assert_problem(wrong, 401)
    accepted = _accept(client, _token(client, invitation), password=elsewhere.password, name=None)
    assert accepted.status_code == 200, accepted.get_json()
    tokens = accepted.get_json()
    assert tokens["agency_id"] == owner.agency_id
    me = client.get("/v1/me", headers=bearer(tokens["access_token"])).get_json()
    assert me["user"]["id"] == elsewhere.user_id
    assert me["access"]["brand_roles"] == {owner.brands[0]: "approver"}
    # Their password did not change, and their own agency is still theirs.
    login = client.post(
        "/v1/auth/token", json={"email": elsewhere.email, "password": elsewhere.password}
    )
    assert login.get_json()["agency_id"] == elsewhere.agency_id


def test_brand_invitation_needs_a_brand_role(client, make_agency):
    owner = make_agency(brands=1)
    response = client.post(
        "/v1/invitations",
        json={"email": "c@example.com", "brand_id": owner.brands[0]},
        headers=owner.headers,
    )
    assert "brand_role" in assert_problem(response, 422)["errors"]
    neither = client.post("/v1/invitations", json={"email": "c@example.com"}, headers=owner.headers)
    assert_problem(neither, 422)


def test_invitation_to_another_agencys_brand_is_404(client, make_agency):
    owner = make_agency(brands=0)
    other = make_agency(brands=1)
    response = client.post(
        "/v1/invitations",
        json={"email": "c@example.com", "brand_id": other.brands[0], "brand_role": "client"},
        headers=owner.headers,
    )
    assert_problem(response, 404)


def test_another_agencys_invitation_is_404(client, make_agency):
    owner = make_agency(brands=0)
    other = make_agency(brands=0)
    invitation = _invite(client, other, agency_role="member")
    assert_problem(client.get(f"/v1/invitations/{invitation['id']}", headers=owner.headers), 404)
    assert_problem(client.delete(f"/v1/invitations/{invitation['id']}", headers=owner.headers), 404)


def test_only_an_owner_can_invite_an_owner(client, make_agency, invite_user):
    owner = make_agency(brands=0)
    admin = invite_user(owner, agency_role="admin")
    response = client.post(
        "/v1/invitations",
        json={"email": "boss@example.com", "agency_role": "owner"},
        headers=admin.headers,
    )
    assert_problem(response, 403)
    assert _invite(client, owner, agency_role="owner")["agency_role"] == "owner"


def test_brand_manager_invites_to_their_brand_only(client, make_agency, invite_user):
    owner = make_agency(brands=2)
    manager = invite_user(owner, brand_id=owner.brands[0], brand_role="manager")
    mine = client.post(
        "/v1/invitations",
        json={"email": "c@example.com", "brand_id": owner.brands[0], "brand_role": "client"},
        headers=manager.headers,
    )
    assert mine.status_code == 201
    not_mine = client.post(
        "/v1/invitations",
        json={"email": "c@example.com", "brand_id": owner.brands[1], "brand_role": "client"},
        headers=manager.headers,
    )
    assert_problem(not_mine, 404)
    to_agency = client.post(
        "/v1/invitations",
        json={"email": "c@example.com", "agency_role": "admin"},
        headers=manager.headers,
    )
    assert_problem(to_agency, 403)
    listed = client.get("/v1/invitations", headers=manager.headers).get_json()
    assert {i["brand_id"] for i in listed["items"]} == {owner.brands[0]}


def test_client_cannot_invite(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    brand_client = invite_user(owner, brand_id=owner.brands[0], brand_role="client")
    response = client.post(
        "/v1/invitations",
        json={"email": "c@example.com", "brand_id": owner.brands[0], "brand_role": "client"},
        headers=brand_client.headers,
    )
    assert_problem(response, 403)
    assert_problem(client.get("/v1/invitations", headers=brand_client.headers), 403)


def test_guessing_an_existing_accounts_password_through_an_invitation_is_slowed(
    client, app, make_agency
):
    victim = make_agency(brands=0)
    inviter = make_agency(brands=0)
    # Whoever invites an e-mail holds the token: the password check must not be a free oracle.
    invitation = client.post(
        "/v1/invitations",
        json={"email": victim.email, "agency_role": "member"},
        headers=inviter.headers,
    ).get_json()
    for _ in range(app.config["LOGIN_FAILURES_BEFORE_DELAY"] + 1):
        assert_problem(
            _accept(client, _token(client, invitation), password="guess-guess", name=None), 401
        )
    waiting = _accept(client, _token(client, invitation), password=victim.password, name=None)
    assert_problem(waiting, 429)
    assert 1 <= int(waiting.headers["Retry-After"]) <= app.config["LOGIN_DELAY_SECONDS"]
    # The same counter as sign-in from that address: switching endpoints buys no guesses.
    signin = client.post("/v1/auth/token", json={"email": victim.email, "password": PASSWORD})
    assert_problem(signin, 429)
    # The victim, from anywhere else, is not locked out.
    elsewhere = client.post(
        "/v1/auth/token",
        json={"email": victim.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.1"},
    )
    assert elsewhere.status_code == 200


def test_preview_tells_the_invitee_what_the_link_is_for(client, make_agency):
    owner = make_agency("Agence Lumière", brands=1)
    elsewhere = make_agency(brands=0)
    _invite(client, owner, brand_id=owner.brands[0], brand_role="client")
    token = invitation_token(client, "new@example.com")
    preview = client.post("/v1/invitations/preview", json={"token": token})
    assert preview.status_code == 200, preview.get_json()
    body = preview.get_json()
    assert body["email"] == "new@example.com" and body["agency_name"] == "Agence Lumière"
    assert body["brand_name"] == "Agence Lumière brand 0" and body["brand_role"] == "client"
    assert body["account_exists"] is False
    # Previewing changes nothing: the link still accepts.
    assert _accept(client, token).status_code == 200
    assert_problem(client.post("/v1/invitations/preview", json={"token": token}), 409)

    _invite(client, owner, email=elsewhere.email, agency_role="member")
    existing = client.post(
        "/v1/invitations/preview", json={"token": invitation_token(client, elsewhere.email)}
    )
    assert existing.get_json()["account_exists"] is True
    assert_problem(client.post("/v1/invitations/preview", json={"token": "inv_nope"}), 404)
