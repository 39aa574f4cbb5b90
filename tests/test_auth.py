"""Identity: tokens, refresh rotation, sign-out, /v1/me and brute-force protection (sign-up is
tests/test_signup.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select, update

from app.auth import tokens
from app.models import LoginThrottle, RefreshToken
from app.models.base import utcnow
from tests.conftest import PASSWORD, invitation_token
from tests.helpers import assert_problem, bearer, owner_connection

SIGNUP = {"agency_name": "Acme", "name": "Ada", "email": "ada@example.com", "password": PASSWORD}


def _login(client, email, password=PASSWORD, **extra):
    return client.post("/v1/auth/token", json={"email": email, "password": password, **extra})


# -- tokens ---------------------------------------------------------------------------------------


def test_token_with_right_password(client, make_agency):
    owner = make_agency(brands=0)
    response = _login(client, owner.email)
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["agency_id"] == owner.agency_id
    assert client.get("/v1/me", headers=bearer(body["access_token"])).status_code == 200


def test_token_wrong_password_and_unknown_email_look_the_same(client, make_agency):
    owner = make_agency(brands=0)
    wrong = assert_problem(_login(client, owner.email, "wrong password!"), 401)
    unknown = assert_problem(_login(client, "nobody@example.com"), 401)
    assert wrong["detail"] == unknown["detail"]


def test_refresh_rotates_and_reuse_revokes_the_whole_family(client, make_agency):
    owner = make_agency(brands=0)
    first = client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert first.status_code == 200
    rotated = first.get_json()
    assert rotated["refresh_token"] != owner.refresh_token
    assert client.get("/v1/me", headers=bearer(rotated["access_token"])).status_code == 200

    # The spent token comes back: someone copied it. Both it and its successor die.
    reused = client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert_problem(reused, 401)
    successor = client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert_problem(successor, 401)


def test_refresh_family_revocation_spares_other_sessions(client, make_agency):
    owner = make_agency(brands=0)
    other_session = _login(client, owner.email).get_json()["refresh_token"]
    client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})  # reuse
    still = client.post("/v1/auth/refresh", json={"refresh_token": other_session})
    assert still.status_code == 200


def test_expired_refresh_token_is_401(client, make_agency, database):
    owner = make_agency(brands=0)
    with owner_connection(database) as connection:
        connection.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_problem(
        client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token}), 401
    )


def test_garbage_refresh_token_is_401(client):
    assert_problem(client.post("/v1/auth/refresh", json={"refresh_token": "rt_nope"}), 401)


def test_logout_revokes_the_refresh_token(client, make_agency):
    owner = make_agency(brands=0)
    out = client.post("/v1/auth/logout", json={"refresh_token": owner.refresh_token})
    assert out.status_code == 204
    assert_problem(
        client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token}), 401
    )


def test_logout_with_unknown_token_is_quiet(client):
    assert client.post("/v1/auth/logout", json={"refresh_token": "rt_unknown"}).status_code == 204


def _forged(app, **overrides):
    now = int(time.time())
    claims = {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "sub": "usr_x",
        "agy": "agy_x",
        "sid": "ses_x",
        "iat": now,
        "exp": now + 60,
        "typ": "access",
        **overrides,
    }
    return jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")


def test_expired_access_token_is_401_problem(client, app, make_agency):
    owner = make_agency(brands=0)
    now = int(time.time())
    expired = _forged(app, sub=owner.user_id, agy=owner.agency_id, iat=now - 3600, exp=now - 60)
    body = assert_problem(client.get("/v1/me", headers=bearer(expired)), 401)
    assert "expired" in body["detail"]
    assert client.get("/v1/me", headers=bearer(expired)).headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "rk_not-a-real-key"},
        {},
    ],
)
def test_garbage_or_missing_credentials_are_401_problem(client, header):
    assert_problem(client.get("/v1/me", headers=header), 401)


def test_token_signed_with_another_secret_is_401(client, make_agency):
    owner = make_agency(brands=0)
    now = int(time.time())
    claims = {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "sub": owner.user_id,
        "agy": owner.agency_id,
        "sid": "ses_x",
        "iat": now,
        "exp": now + 60,
        "typ": "access",
    }
    forged = jwt.encode(claims, "another-secret-of-enough-length-0123456789", algorithm="HS256")
    assert_problem(client.get("/v1/me", headers=bearer(forged)), 401)


def test_refresh_token_is_not_an_access_token(client, make_agency):
    owner = make_agency(brands=0)
    assert_problem(client.get("/v1/me", headers=bearer(owner.refresh_token)), 401)


def test_access_token_of_someone_removed_from_the_agency_is_401(client, app, make_agency):
    owner = make_agency(brands=0)
    stranger = make_agency(brands=0)
    forged = _forged(app, sub=stranger.user_id, agy=owner.agency_id)
    assert_problem(client.get("/v1/me", headers=bearer(forged)), 401)


# -- /v1/me ---------------------------------------------------------------------------------------


def test_me_for_owner(client, make_agency):
    owner = make_agency(brands=1)
    me = client.get("/v1/me", headers=owner.headers).get_json()
    assert me["kind"] == "user"
    assert me["user"]["id"] == owner.user_id
    assert me["api_key_id"] is None
    assert me["access"] == {"agency_id": owner.agency_id, "agency_role": "owner", "brand_roles": {}}
    assert me["agencies"] == [owner.agency_id]


def test_me_for_client(client, make_agency, invite_user):
    owner = make_agency(brands=2)
    brand_client = invite_user(owner, brand_id=owner.brands[1], brand_role="client")
    me = client.get("/v1/me", headers=brand_client.headers).get_json()
    assert me["user"]["id"] == brand_client.user_id
    assert me["access"]["agency_role"] is None
    assert me["access"]["brand_roles"] == {owner.brands[1]: "client"}
    assert me["agencies"] == [owner.agency_id]


def test_me_for_api_key(client, make_agency):
    owner = make_agency(brands=1)
    created = client.post("/v1/api-keys", json={"name": "ci"}, headers=owner.headers).get_json()
    me = client.get("/v1/me", headers={"X-API-Key": created["key"]})
    assert me.status_code == 200, me.get_json()
    body = me.get_json()
    assert body["kind"] == "api_key"
    assert body["user"] is None
    assert body["api_key_id"] == created["id"]
    assert body["agency"]["id"] == owner.agency_id
    assert body["agencies"] == [owner.agency_id]


# -- several agencies -----------------------------------------------------------------------------


def test_user_of_several_agencies_chooses_one_at_sign_in(client, make_agency):
    first = make_agency("First", brands=0)
    second = make_agency("Second", brands=0)
    invited = client.post(
        "/v1/invitations",
        json={"email": first.email, "agency_role": "admin"},
        headers=second.headers,
    ).get_json()
    accepted = client.post(
        "/v1/invitations/accept",
        json={"token": invitation_token(client, invited["email"]), "password": PASSWORD},
    )
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["agency_id"] == second.agency_id

    default = _login(client, first.email).get_json()
    assert default["agency_id"] == first.agency_id
    chosen = _login(client, first.email, agency_id=second.agency_id).get_json()
    assert chosen["agency_id"] == second.agency_id
    me = client.get("/v1/me", headers=bearer(chosen["access_token"])).get_json()
    assert me["access"]["agency_role"] == "admin"
    assert me["agencies"] == [first.agency_id, second.agency_id]

    # The refreshed pair stays in the chosen agency.
    refreshed = client.post(
        "/v1/auth/refresh", json={"refresh_token": chosen["refresh_token"]}
    ).get_json()
    assert refreshed["agency_id"] == second.agency_id


def test_sign_in_to_an_agency_you_are_not_in_is_422(client, make_agency):
    mine = make_agency(brands=0)
    other = make_agency(brands=0)
    body = assert_problem(_login(client, mine.email, agency_id=other.agency_id), 422)
    assert "agency_id" in body["errors"]


# -- brute-force protection (more in tests/test_login_throttle.py) ------------------------------


@pytest.mark.parametrize("path", ["/v1/signup", "/v1/auth/token", "/v1/invitations/accept"])
def test_password_with_a_lone_surrogate_is_422_not_500(client, make_agency, path):
    owner = make_agency(brands=0)
    # Valid JSON ("\ud800"), but not encodable for the hash.
    payload = {**SIGNUP, "email": owner.email, "password": "\ud800" * 12, "token": "inv_x"}
    fields = {
        "/v1/signup": ("agency_name", "name", "email", "password"),
        "/v1/auth/token": ("email", "password"),
        "/v1/invitations/accept": ("token", "password"),
    }[path]
    response = client.post(path, json={k: payload[k] for k in fields})
    assert "password" in assert_problem(response, 422)["errors"]


def test_client_address_comes_from_the_proxy_only_when_trusted(app_config, database):
    from app import create_app

    forwarded = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}
    for trusted, expected in [(False, "127.0.0.1"), (True, "203.0.113.50")]:
        app = create_app({**app_config, "TRUST_PROXY_HEADERS": trusted})
        response = app.test_client().post(
            "/v1/auth/token",
            json={"email": "nobody@example.com", "password": "wrong password!"},
            headers=forwarded,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        assert response.status_code == 401
        with owner_connection(database) as connection:
            keys = set(connection.scalars(select(LoginThrottle.key)))
            connection.execute(LoginThrottle.__table__.delete())
        assert f"ip:{expected}" in keys, (trusted, keys)
