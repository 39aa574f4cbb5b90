"""Secrets handed out once (API keys, refresh tokens, the tokens of links sent by mail) are
stored hashed only: not in their own tables, not in the copy of a response kept for
Idempotency-Key replays, and not in the outbox."""

from __future__ import annotations

from sqlalchemy import String, Text, select

from app.models import Base
from tests.conftest import PASSWORD, invitation_token
from tests.helpers import owner_connection
from tests.mail import last_mail, token_in


def _stored_text(database) -> str:
    """Every text value of every table, as one string."""
    parts: list[str] = []
    with owner_connection(database) as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if isinstance(c.type, String | Text)]
            for row in connection.execute(select(*columns)):
                parts += [str(value) for value in row if value is not None]
    return "\n".join(parts)


def test_secrets_in_idempotent_responses_are_not_stored_in_clear(client, database):
    asked = client.post(
        "/v1/signup",
        json={"agency_name": "A", "name": "N", "email": "n@example.com", "password": PASSWORD},
        headers={"Idempotency-Key": "signup-1"},
    )
    assert asked.status_code == 202
    signup_token = token_in(last_mail(client.application, "n@example.com"), "/verify-email")
    signup = client.post(
        "/v1/signup/verify", json={"token": signup_token, "password": PASSWORD}
    ).get_json()
    owner = {"Authorization": f"Bearer {signup['tokens']['access_token']}"}
    key = client.post(
        "/v1/api-keys", json={"name": "ci"}, headers={**owner, "Idempotency-Key": "key-1"}
    ).get_json()
    invitation = client.post(
        "/v1/invitations",
        json={"email": "i@example.com", "agency_role": "member"},
        headers={**owner, "Idempotency-Key": "invite-1"},
    ).get_json()

    stored = _stored_text(database)
    for secret in (
        signup["tokens"]["refresh_token"],
        signup["tokens"]["access_token"],
        key["key"],
        # Secrets that went by mail: kept hashed, and out of the outbox once sent.
        signup_token,
        invitation_token(client, invitation["email"]),
        PASSWORD,
    ):
        assert secret not in stored

    # The replay still gives the caller what the first response gave.
    replayed = client.post(
        "/v1/api-keys", json={"name": "ci"}, headers={**owner, "Idempotency-Key": "key-1"}
    )
    assert replayed.get_json() == key
    assert replayed.headers["Idempotent-Replayed"] == "true"


def test_a_replay_needs_the_very_same_idempotency_key(client, make_agency, database):
    owner = make_agency(brands=0)
    client.post(
        "/v1/api-keys", json={"name": "ci"}, headers={**owner.headers, "Idempotency-Key": "abc"}
    )
    # The stored copy is useless without the key itself (it is kept as a hash).
    assert "abc" not in _stored_text(database).split("\n")
