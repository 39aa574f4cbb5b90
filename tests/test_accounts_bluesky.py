"""Bluesky against a REAL local PDS (@atproto/pds) started by the suite on 127.0.0.1: connect with
an app password (the session is kept, never the password), refresh, bad password, disconnect and
reconnect. Skipped, saying why, when Node/npm are missing or the PDS cannot be installed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from app.models.base import utcnow
from app.security.crypto import CredentialsCipher
from tests.accounts_helpers import raw_account_row, set_account_columns
from tests.peers.bluesky_pds import BlueskyPds

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def bluesky_pds() -> Iterator[BlueskyPds]:
    pds = BlueskyPds.start_or_skip()
    yield pds
    pds.stop()


def _stored_secrets(app, account_id: str) -> tuple[bytes, dict]:
    raw = bytes(raw_account_row(app, account_id)["credentials_encrypted"])
    return raw, CredentialsCipher(app.config["CREDENTIALS_ENCRYPTION_KEYS"]).decrypt(raw)


def test_connect_refresh_disconnect_reconnect(app, client, make_agency, bluesky_pds):
    from app.services import token_refresh

    person = bluesky_pds.create_account("alice")
    owner = make_agency("Sky")
    brand = owner.brands[0]
    created = client.post(
        f"/v1/brands/{brand}/accounts",
        json={
            "network": "bluesky",
            "handle": f"@{person.handle}",
            "app_password": person.app_password,
            "pds_url": bluesky_pds.url,
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.get_json()
    account = created.get_json()
    assert account["handle"] == f"@{person.handle}"
    assert account["external_id"] == person.did
    assert account["instance_url"] == bluesky_pds.url
    assert account["health"] == "active"
    assert account["token_expires_at"] is not None  # the refresh JWT's own expiry
    assert person.app_password not in created.get_data(as_text=True)

    raw, secrets = _stored_secrets(app, account["id"])
    assert set(secrets) == {"access_jwt", "refresh_jwt"}  # the session, never the password
    assert person.app_password.encode() not in raw
    assert secrets["refresh_jwt"].encode() not in raw

    # Refresh: the job picks up a session near its end and the PDS rotates it.
    set_account_columns(app, account["id"], token_expires_at=utcnow() + timedelta(hours=1))
    with app.app_context():
        assert token_refresh.refresh_expiring_tokens() == {"refreshed": 1}
    _, refreshed = _stored_secrets(app, account["id"])
    assert refreshed["refresh_jwt"] != secrets["refresh_jwt"]
    url = f"/v1/brands/{brand}/accounts/{account['id']}"
    after = client.get(url, headers=owner.headers).get_json()
    assert after["health"] == "active" and after["last_refreshed_at"] is not None

    # Disconnect deletes the session at the PDS: its refresh token is dead from then on.
    assert client.delete(url, headers=owner.headers).status_code == 204
    with app.app_context():
        from app.networks import connector_for
        from app.networks.base import CredentialsRejected

        with pytest.raises(CredentialsRejected):
            connector_for("bluesky").refresh(refreshed, bluesky_pds.url)
    assert client.get(url, headers=owner.headers).get_json()["health"] == "revoked"

    # Reconnect with a new app password: same row, active again.
    again = client.post(
        f"{url}/reconnect", json={"app_password": person.app_password}, headers=owner.headers
    )
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["account"]["id"] == account["id"]
    assert again.get_json()["account"]["health"] == "active"


def test_bad_app_password_is_a_clear_422(client, make_agency, bluesky_pds):
    person = bluesky_pds.create_account("bob")
    owner = make_agency("Wrong")
    refused = client.post(
        f"/v1/brands/{owner.brands[0]}/accounts",
        json={
            "network": "bluesky",
            "handle": person.handle,
            "app_password": "xxxx-xxxx-xxxx-xxxx",
            "pds_url": bluesky_pds.url,
        },
        headers=owner.headers,
    )
    assert refused.status_code == 422
    assert refused.content_type == "application/problem+json"
    problem = refused.get_json()
    assert "app_password" in problem["errors"]
    assert "refused" in problem["detail"]
    listed = client.get(f"/v1/brands/{owner.brands[0]}/accounts", headers=owner.headers)
    assert listed.get_json()["items"] == []


def test_reconnect_as_another_account_is_refused(client, make_agency, bluesky_pds):
    first = bluesky_pds.create_account("carol")
    second = bluesky_pds.create_account("dave")
    owner = make_agency("Other sky")
    brand = owner.brands[0]
    created = client.post(
        f"/v1/brands/{brand}/accounts",
        json={
            "network": "bluesky",
            "handle": first.handle,
            "app_password": first.app_password,
            "pds_url": bluesky_pds.url,
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.get_json()
    url = f"/v1/brands/{brand}/accounts/{created.get_json()['id']}"
    refused = client.post(
        f"{url}/reconnect",
        json={"handle": second.handle, "app_password": second.app_password},
        headers=owner.headers,
    )
    assert refused.status_code == 409
    assert client.get(url, headers=owner.headers).get_json()["handle"] == f"@{first.handle}"
