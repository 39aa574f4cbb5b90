"""A revoked session stops working at once, not when its access token expires.

Four causes revoke a session: signing out, a refresh token presented twice, a password change,
and losing one's place in the agency. Each access token below is used once before the
revocation, so the process has verified and remembered it (app/auth/tokens.py); each cause is
then carried out by a *second* application (its own engine and pool), and once by another
operating-system process, to show that nothing held in the first process keeps a session alive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event

from app import create_app
from tests.conftest import PASSWORD, invitation_token
from tests.helpers import assert_problem, bearer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def other_client(app_config):
    """Another application on the same database and Redis, as another gunicorn worker is."""
    return create_app(dict(app_config)).test_client()


def _sign_in(client, email, password=PASSWORD, agency_id=None):
    body = {"email": email, "password": password}
    if agency_id:
        body["agency_id"] = agency_id
    response = client.post("/v1/auth/token", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _works(client, access_token) -> bool:
    response = client.get("/v1/me", headers=bearer(access_token))
    if response.status_code == 401:
        assert_problem(response, 401)
        return False
    assert response.status_code == 200, response.get_json()
    return True


def _refresh(client, refresh_token):
    return client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})


def test_sign_out_ends_the_session_at_once(client, other_client, make_agency):
    owner = make_agency(brands=0)
    other = _sign_in(client, owner.email)
    assert _works(client, owner.token) and _works(client, other["access_token"])
    assert (
        other_client.post(
            "/v1/auth/logout", json={"refresh_token": owner.refresh_token}
        ).status_code
        == 204
    )
    body = assert_problem(client.get("/v1/me", headers=owner.headers), 401)
    assert "signed out or revoked" in body["detail"]
    # Only that session: the one signed in separately goes on.
    assert _works(client, other["access_token"])


def test_a_reused_refresh_token_ends_the_session_at_once(client, other_client, make_agency):
    owner = make_agency(brands=0)
    assert _works(client, owner.token)
    rotated = _refresh(client, owner.refresh_token).get_json()
    assert _works(client, rotated["access_token"])
    # Someone presents the spent token again: the session is revoked for safety...
    assert_problem(_refresh(other_client, owner.refresh_token), 401)
    # ...and with it every access token it issued, the newest included.
    assert not _works(client, owner.token)
    assert not _works(client, rotated["access_token"])
    assert_problem(_refresh(client, rotated["refresh_token"]), 401)


def _mailed_token(client, person) -> str:
    return invitation_token(client, person.email)


def test_a_password_change_ends_every_session_of_the_person(
    client, other_client, make_agency, invite_user
):
    owner = make_agency(brands=0)
    person = invite_user(owner, agency_role="member")
    # The same person in a second agency, with a session there.
    elsewhere = make_agency(brands=0)
    invited = client.post(
        "/v1/invitations",
        json={"email": person.email, "agency_role": "admin"},
        headers=elsewhere.headers,
    )
    assert invited.status_code == 201, invited.get_json()
    accepted = client.post(
        "/v1/invitations/accept",
        json={"token": _mailed_token(client, person), "password": PASSWORD},
    )
    assert accepted.status_code == 200, accepted.get_json()
    there = accepted.get_json()
    here = _sign_in(client, person.email, agency_id=owner.agency_id)
    for token in (person.token, there["access_token"], here["access_token"]):
        assert _works(client, token)

    changed = other_client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=bearer(here["access_token"]),
    )
    assert changed.status_code == 200, changed.get_json()
    fresh = changed.get_json()
    assert fresh["agency_id"] == owner.agency_id

    for token in (person.token, there["access_token"], here["access_token"]):
        assert not _works(client, token)
    for refresh_token in (person.refresh_token, there["refresh_token"], here["refresh_token"]):
        assert_problem(_refresh(client, refresh_token), 401)
    assert _works(client, fresh["access_token"])
    assert_problem(
        client.post("/v1/auth/token", json={"email": person.email, "password": PASSWORD}), 401
    )
    _sign_in(client, person.email, "a brand new passphrase")
    # The person is told by e-mail, in case it was not them.
    from tests.mail import read_mail

    subjects = [m["Subject"] for m in read_mail(client.application, person.email)]
    assert "Your Relais password was changed" in subjects


def test_a_wrong_current_password_changes_nothing(client, make_agency):
    owner = make_agency(brands=0)
    wrong = client.post(
        "/v1/me/password",
        json={"current_password": "not my password", "new_password": "a brand new passphrase"},
        headers=owner.headers,
    )
    assert "current_password" in assert_problem(wrong, 422)["errors"]
    assert _works(client, owner.token)
    _sign_in(client, owner.email)


def test_api_keys_have_no_password_to_change(client, make_agency):
    owner = make_agency(brands=0)
    key = client.post("/v1/api-keys", json={"name": "bot"}, headers=owner.headers).get_json()
    response = client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers={"X-API-Key": key["key"]},
    )
    assert_problem(response, 403)


def _membership_id(client, owner, user_id):
    members = client.get("/v1/agency/members?limit=100", headers=owner.headers).get_json()
    return next(m["id"] for m in members["items"] if m["user_id"] == user_id)


def test_removal_from_the_agency_ends_the_session_even_if_invited_back(
    client, other_client, make_agency, invite_user
):
    owner = make_agency(brands=0)
    person = invite_user(owner, agency_role="admin")
    assert _works(client, person.token)
    removed = other_client.delete(
        f"/v1/agency/members/{_membership_id(client, owner, person.user_id)}",
        headers=owner.headers,
    )
    assert removed.status_code == 204
    assert not _works(client, person.token)
    # Invited back (a mistake undone, say): what they held before stays dead.
    invited = client.post(
        "/v1/invitations",
        json={"email": person.email, "agency_role": "member"},
        headers=owner.headers,
    )
    assert invited.status_code == 201, invited.get_json()
    back = client.post(
        "/v1/invitations/accept",
        json={"token": _mailed_token(client, person), "password": PASSWORD},
    )
    assert back.status_code == 200, back.get_json()
    assert not _works(client, person.token)
    assert_problem(_refresh(client, person.refresh_token), 401)
    assert _works(client, back.get_json()["access_token"])


def test_a_client_removed_from_their_only_brand_loses_the_session(
    client, other_client, make_agency, invite_user
):
    owner = make_agency(brands=1)
    brand_id = owner.brands[0]
    person = invite_user(owner, brand_id=brand_id, brand_role="client")
    assert _works(client, person.token)
    members = client.get(f"/v1/brands/{brand_id}/members", headers=owner.headers).get_json()
    membership = next(m for m in members["items"] if m["user_id"] == person.user_id)
    assert (
        other_client.delete(
            f"/v1/brands/{brand_id}/members/{membership['id']}", headers=owner.headers
        ).status_code
        == 204
    )
    assert not _works(client, person.token)
    invited = client.post(
        "/v1/invitations",
        json={"email": person.email, "brand_id": brand_id, "brand_role": "client"},
        headers=owner.headers,
    )
    assert invited.status_code == 201, invited.get_json()
    assert (
        client.post(
            "/v1/invitations/accept",
            json={"token": _mailed_token(client, person), "password": PASSWORD},
        ).status_code
        == 200
    )
    assert not _works(client, person.token)


def test_losing_one_place_of_several_keeps_the_session(client, make_agency, invite_user):
    owner = make_agency(brands=2)
    person = invite_user(owner, agency_role="member")
    for brand_id in owner.brands[:1]:
        added = client.post(
            f"/v1/brands/{brand_id}/members",
            json={"user_id": person.user_id, "role": "editor"},
            headers=owner.headers,
        )
        assert added.status_code == 201
    brand_members = client.get(
        f"/v1/brands/{owner.brands[0]}/members", headers=owner.headers
    ).get_json()
    first = next(m for m in brand_members["items"] if m["user_id"] == person.user_id)
    assert (
        client.delete(
            f"/v1/brands/{owner.brands[0]}/members/{first['id']}", headers=owner.headers
        ).status_code
        == 204
    )
    assert _works(client, person.token)


def test_a_sign_out_in_another_process_is_seen_at_once(client, app_config, make_agency):
    owner = make_agency(brands=0)
    assert _works(client, owner.token)  # verified and remembered by this process
    settings = {
        key: app_config[key]
        for key in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENV")
    }
    # Settings and token go as arguments: they are the test's, not configuration to document.
    script = (
        "import json, sys\n"
        "from app import create_app\n"
        "from app.config import TestConfig, config_as_dict\n"
        "from app.services import identity\n"
        "settings = config_as_dict(TestConfig)\n"
        "settings.update(json.loads(sys.argv[1]))\n"
        "with create_app(settings).app_context():\n"
        "    identity.logout(sys.argv[2])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, json.dumps(settings), owner.refresh_token],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    assert not _works(client, owner.token)


def test_the_session_check_costs_no_extra_round_trip(app, client, make_agency):
    """The session is checked in the statement that reads the caller's role."""
    owner = make_agency(brands=1)
    url = f"/v1/brands/{owner.brands[0]}"
    assert client.get(url, headers=owner.headers).status_code == 200
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(("BEGIN", "SELECT SET_CONFIG", "COMMIT")):
            statements.append(statement)

    with app.app_context():
        from app.extensions import db

        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(url, headers=owner.headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # One for who the caller is (role and session together), one for the brand.
    assert len(statements) == 2, statements


def test_a_client_removed_from_one_of_their_brands_keeps_the_session(
    client, make_agency, invite_user
):
    owner = make_agency(brands=2)
    person = invite_user(owner, brand_id=owner.brands[0], brand_role="client")
    invited = client.post(
        "/v1/invitations",
        json={"email": person.email, "brand_id": owner.brands[1], "brand_role": "client"},
        headers=owner.headers,
    )
    assert invited.status_code == 201, invited.get_json()
    assert (
        client.post(
            "/v1/invitations/accept",
            json={"token": _mailed_token(client, person), "password": PASSWORD},
        ).status_code
        == 200
    )
    # Removed from brand 0 by its manager, who cannot see brand 1: brand 1 still counts.
    manager = invite_user(owner, brand_id=owner.brands[0], brand_role="manager")
    members = client.get(f"/v1/brands/{owner.brands[0]}/members", headers=manager.headers)
    membership = next(m for m in members.get_json()["items"] if m["user_id"] == person.user_id)
    removed = client.delete(
        f"/v1/brands/{owner.brands[0]}/members/{membership['id']}", headers=manager.headers
    )
    assert removed.status_code == 204
    assert _works(client, person.token)
