"""Sign-up with an address its owner controls: confirmed by mail, the same answer whether the
address is free or registered, and nobody can take an address over (issue 6, item 11)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.models import OutboundEmail, SignupRequest, User
from app.models.base import utcnow
from tests.conftest import PASSWORD, invitation_token, sign_up
from tests.helpers import assert_problem, bearer, owner_connection
from tests.mail import last_mail, read_mail, text_of, token_in

SIGNUP = {"agency_name": "Acme", "name": "Ada", "email": "ada@example.com", "password": PASSWORD}


def _ask(client, **overrides):
    response = client.post("/v1/signup", json={**SIGNUP, **overrides})
    assert response.status_code == 202, response.get_json()
    return response


def _verify(client, token, password=PASSWORD):
    return client.post("/v1/signup/verify", json={"token": token, "password": password})


def _login(client, email, password=PASSWORD):
    return client.post("/v1/auth/token", json={"email": email, "password": password})


def test_signup_creates_nothing_until_the_address_is_confirmed(client, app, database):
    body = _ask(client).get_json()
    assert set(body) == {"detail"}
    assert_problem(_login(client, "ada@example.com"), 401)  # no account yet

    message = last_mail(app, "ada@example.com")
    assert message["Subject"] == "Confirm your address to create Acme on Relais"
    token = token_in(message, "/verify-email")
    assert f"{app.config['API_BASE_URL']}/verify-email?token={token}" in text_of(message)

    confirmed = _verify(client, token)
    assert confirmed.status_code == 201, confirmed.get_json()
    result = confirmed.get_json()
    assert result["agency"]["id"].startswith("agy_") and result["agency"]["name"] == "Acme"
    assert result["user"]["email"] == "ada@example.com" and result["user"]["name"] == "Ada"
    assert "password" not in result["user"] and "password_hash" not in result["user"]
    me = client.get("/v1/me", headers=bearer(result["tokens"]["access_token"])).get_json()
    assert me["access"]["agency_role"] == "owner"
    assert me["agency"]["id"] == result["agency"]["id"]
    assert _login(client, "ada@example.com").status_code == 200

    assert "already confirmed" in assert_problem(_verify(client, token), 409)["detail"]
    with owner_connection(database) as connection:
        stored = connection.execute(
            select(User.password_hash).where(User.email == "ada@example.com")
        ).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_confirming_needs_the_password_chosen_at_signup(client, app):
    """Someone signing up with another's address cannot leave them an account whose password
    the intruder knows: the owner of the mailbox does not know it, so cannot confirm."""
    _ask(client, password="the intruder's password")
    token = token_in(last_mail(app, "ada@example.com"), "/verify-email")
    assert_problem(_verify(client, token, password=PASSWORD), 401)
    assert_problem(_login(client, "ada@example.com", "the intruder's password"), 401)
    # The intruder, without the mailbox, has no token at all.
    assert_problem(_verify(client, "sgn_guessed", password="the intruder's password"), 404)


def test_a_registered_address_gets_the_same_answer_and_its_owner_is_told(client, app, make_agency):
    owner = make_agency(brands=0)
    fresh = _ask(client, email="someone-new@example.com")
    taken = _ask(client, email=owner.email.upper(), password="not the owner's password")
    assert taken.get_json() == fresh.get_json()
    assert taken.headers.get("Content-Length") == fresh.headers.get("Content-Length")

    message = last_mail(app, owner.email)
    assert message["Subject"] == "Someone tried to sign up to Relais with your address"
    text = text_of(message)
    assert "/reset-password" in text
    # The owner's account is untouched: same password, one agency.
    signed_in = _login(client, owner.email, owner.password)
    assert signed_in.status_code == 200
    assert_problem(_login(client, owner.email, "not the owner's password"), 401)

    # The link, with the password given at sign-up, does nothing: only the account's does.
    token = token_in(message, "/verify-email")
    assert_problem(_verify(client, token, password="not the owner's password"), 401)
    # If it was the owner, they may create the new agency with their own password.
    created = _verify(client, token, password=owner.password)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["user"]["id"] == owner.user_id
    me = client.get("/v1/me", headers=bearer(created.get_json()["tokens"]["access_token"]))
    assert me.get_json()["agencies"] == [owner.agency_id, created.get_json()["agency"]["id"]]


def test_free_and_registered_addresses_cost_the_same_work(client, app, make_agency, monkeypatch):
    from app.services import signup

    owner = make_agency(brands=0)
    hashed: list[str] = []
    real_hash = signup.hash_password
    monkeypatch.setattr(signup, "hash_password", lambda p: hashed.append(p) or real_hash(p))
    with app.app_context():
        from app.extensions import db

        before = db.session.scalar(select(func.count()).select_from(OutboundEmail))
    _ask(client, email="free@example.com")
    _ask(client, email=owner.email)
    assert hashed == [PASSWORD, PASSWORD]
    with app.app_context():
        rows = db.session.scalars(select(SignupRequest.email).order_by(SignupRequest.id)).all()
        after = db.session.scalar(select(func.count()).select_from(OutboundEmail))
    assert rows[-2:] == ["free@example.com", owner.email]
    assert after - before == 2


def test_expired_and_unknown_confirmation_links(client, app, database):
    _ask(client)
    token = token_in(last_mail(app, "ada@example.com"), "/verify-email")
    assert_problem(_verify(client, "sgn_does-not-exist"), 404)
    with owner_connection(database) as connection:
        connection.execute(update(SignupRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert "expired" in assert_problem(_verify(client, token), 409)["detail"]


def test_two_requests_for_one_address_make_one_account(client, app):
    _ask(client)
    _ask(client, agency_name="Acme bis")
    first, second = (token_in(m, "/verify-email") for m in read_mail(app, "ada@example.com"))
    assert _verify(client, first).status_code == 201
    # The address has an account now: the second link needs that account's password, which
    # here is the same, and adds a second agency to it rather than a second account.
    assert _verify(client, second).status_code == 201
    assert len(_login(client, "ada@example.com").get_json()["access_token"]) > 0


@pytest.mark.parametrize("password", ["short", "", "x" * 9])
def test_signup_weak_password_is_422_with_field_error(client, password):
    body = assert_problem(client.post("/v1/signup", json={**SIGNUP, "password": password}), 422)
    assert "password" in body["errors"]


def test_signup_missing_fields_is_422(client):
    body = assert_problem(client.post("/v1/signup", json={"email": "not-an-email"}), 422)
    assert {"agency_name", "name", "email", "password"} <= set(body["errors"])


def test_an_inviter_cannot_take_over_a_strangers_address(client, app, make_agency):
    """Before: the invitation token came back to the inviter, who could accept an invitation
    sent to a stranger's address and own an account under it; the owner's later sign-up then
    got a 409. Now the secret goes only to the address, and the owner signs up as usual."""
    inviter = make_agency(brands=1)
    created = client.post(
        "/v1/invitations",
        json={
            "email": "stranger@example.com",
            "brand_id": inviter.brands[0],
            "brand_role": "client",
        },
        headers={**inviter.headers, "Idempotency-Key": "invite-stranger"},
    )
    assert created.status_code == 201
    token = invitation_token(client, "stranger@example.com")
    seen_by_inviter = [
        created.get_data(as_text=True),
        client.get(f"/v1/invitations/{created.get_json()['id']}", headers=inviter.headers).get_data(
            as_text=True
        ),
        client.get("/v1/invitations", headers=inviter.headers).get_data(as_text=True),
        client.post(  # the idempotent replay gives back the same, secret-free answer
            "/v1/invitations",
            json={
                "email": "stranger@example.com",
                "brand_id": inviter.brands[0],
                "brand_role": "client",
            },
            headers={**inviter.headers, "Idempotency-Key": "invite-stranger"},
        ).get_data(as_text=True),
    ]
    assert not [text for text in seen_by_inviter if token in text]

    confirmed = sign_up(client, email="stranger@example.com", name="Stranger's own agency")
    assert confirmed.status_code == 201, confirmed.get_json()
