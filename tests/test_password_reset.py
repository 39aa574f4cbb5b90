"""Forgot password: a link by mail, the same answer for any address, a reset that signs out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.models import PasswordReset
from app.models.base import utcnow
from tests.helpers import assert_problem, owner_connection
from tests.mail import last_mail, read_mail, text_of, token_in

NEW_PASSWORD = "a brand new long password"


def _ask(client, email):
    response = client.post("/v1/auth/password-reset", json={"email": email})
    assert response.status_code == 202, response.get_json()
    return response


def _confirm(client, token, password=NEW_PASSWORD):
    return client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "password": password}
    )


def _resets(app, email):
    return [m for m in read_mail(app, email) if m["Subject"] == "Reset your Relais password"]


def _login(client, email, password):
    return client.post("/v1/auth/token", json={"email": email, "password": password})


def test_a_reset_link_by_mail_sets_the_password_and_signs_out_everywhere(client, app, make_agency):
    owner = make_agency(brands=0)
    _ask(client, owner.email.upper())  # addresses are compared case-insensitively
    message = last_mail(app, owner.email)
    assert message["Subject"] == "Reset your Relais password"
    token = token_in(message, "/reset-password")
    # No front end configured: the link is Relais's own page, under API_BASE_URL.
    assert f"{app.config['API_BASE_URL']}/reset-password?token={token}" in text_of(message)

    assert _confirm(client, token).status_code == 204
    assert _login(client, owner.email, NEW_PASSWORD).status_code == 200
    assert_problem(_login(client, owner.email, owner.password), 401)
    # The session that existed before the reset is over.
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert_problem(refreshed, 401)
    # The link works once.
    assert "already used" in assert_problem(_confirm(client, token), 409)["detail"]
    # And the owner is told.
    notice = last_mail(app, owner.email)
    assert notice["Subject"] == "Your Relais password was changed"
    assert "/reset-password" in text_of(notice)


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, app, make_agency):
    owner = make_agency(brands=0)
    known = _ask(client, owner.email)
    unknown = _ask(client, "nobody-here@example.com")
    assert unknown.get_json() == known.get_json()
    assert unknown.headers.get("Content-Length") == known.headers.get("Content-Length")
    assert read_mail(app, "nobody-here@example.com") == []
    assert len(_resets(app, owner.email)) == 1


def test_unknown_expired_and_superseded_links(client, app, make_agency, database):
    owner = make_agency(brands=0)
    assert_problem(_confirm(client, "pwr_not-a-real-token"), 404)

    _ask(client, owner.email)
    first = token_in(last_mail(app, owner.email), "/reset-password")
    _ask(client, owner.email)
    second = token_in(last_mail(app, owner.email), "/reset-password")
    assert first != second

    with owner_connection(database) as connection:
        connection.execute(
            update(PasswordReset)
            .where(PasswordReset.token_hash != "")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert "expired" in assert_problem(_confirm(client, first), 409)["detail"]
    with owner_connection(database) as connection:
        connection.execute(
            update(PasswordReset).values(expires_at=utcnow() + timedelta(minutes=30))
        )
    assert _confirm(client, second).status_code == 204
    # Using one link spends every other link of the account.
    assert_problem(_confirm(client, first), 409)


def test_the_new_password_follows_the_password_rules(client, app, make_agency):
    owner = make_agency(brands=0)
    _ask(client, owner.email)
    token = token_in(last_mail(app, owner.email), "/reset-password")
    assert "password" in assert_problem(_confirm(client, token, "short"), 422)["errors"]
    # The refused attempt did not spend the link.
    assert _confirm(client, token).status_code == 204


def test_asking_again_and_again_does_not_flood_the_mailbox(client, app, make_agency):
    owner = make_agency(brands=0)
    for _ in range(5):
        _ask(client, owner.email)
    assert len(_resets(app, owner.email)) == 3
