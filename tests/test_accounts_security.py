"""Credentials at rest (encrypted, unreadable without the key, rotation) and the SSRF guard on
user-given server URLs."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app import create_app
from app.security.crypto import CredentialsCipher, CredentialsUnreadable
from app.security.outbound import TargetRefused, check_target
from tests.accounts_helpers import raw_account_row
from tests.fakes.oauth_networks import FakeMastodon


@pytest.fixture
def mastodon():
    fake = FakeMastodon().start()
    yield fake
    fake.stop()


def _connect_with_token(client, owner, mastodon, user="alice"):
    token = mastodon.personal_token(user)
    created = client.post(
        f"/v1/brands/{owner.brands[0]}/accounts",
        json={"network": "mastodon", "instance_url": mastodon.url, "access_token": token},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"], token


def test_credentials_are_unreadable_without_the_key(app, client, make_agency, mastodon):
    owner = make_agency("Crypto")
    account_id, token = _connect_with_token(client, owner, mastodon)
    stored = bytes(raw_account_row(app, account_id)["credentials_encrypted"])
    assert token.encode() not in stored
    with pytest.raises(CredentialsUnreadable):
        CredentialsCipher([Fernet.generate_key().decode()]).decrypt(stored)
    test_key = app.config["CREDENTIALS_ENCRYPTION_KEYS"][0]
    assert CredentialsCipher([test_key]).decrypt(stored)["access_token"] == token


def test_rotate_keys_re_encrypts_with_the_newest_key(
    app, app_config, client, make_agency, mastodon
):
    owner = make_agency("Rotate")
    account_id, token = _connect_with_token(client, owner, mastodon)
    old_key = app.config["CREDENTIALS_ENCRYPTION_KEYS"][0]
    new_key = Fernet.generate_key().decode()

    rotating = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [new_key, old_key]})
    result = rotating.test_cli_runner().invoke(args=["accounts", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "social_accounts: 1" in result.output

    stored = bytes(raw_account_row(app, account_id)["credentials_encrypted"])
    assert CredentialsCipher([new_key]).decrypt(stored)["access_token"] == token
    with pytest.raises(CredentialsUnreadable):
        CredentialsCipher([old_key]).decrypt(stored)

    # With only the new key, the app still reads the account (and a second run has no work).
    rotated = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [new_key]})
    again = rotated.test_cli_runner().invoke(args=["accounts", "rotate-keys"])
    assert "social_accounts_current: 1" in again.output
    with rotated.app_context():
        from app.extensions import db
        from app.models import SocialAccount
        from app.services.accounts import credentials_of
        from app.tenancy import system_scope

        with system_scope():
            account = db.session.get(SocialAccount, account_id)
            assert credentials_of(account)["access_token"] == token
            db.session.rollback()


def test_production_refuses_to_start_without_encryption_keys(app_config):
    settings = {
        **app_config,
        "ENV": "production",
        "SECRET_KEY": "a-long-enough-production-secret-key-0123456789",
        "API_BASE_URL": "https://api.relais.example",
        "SMTP_URL": "smtp://mail.relais.example:587",
        "MAIL_FROM": "Relais <relais@relais.example>",
        "CREDENTIALS_ENCRYPTION_KEYS": [],
    }
    with pytest.raises(RuntimeError, match="CREDENTIALS_ENCRYPTION_KEYS"):
        create_app(settings)
    with pytest.raises(ValueError, match="not a Fernet key"):
        create_app({**settings, "CREDENTIALS_ENCRYPTION_KEYS": ["not-a-key"]})


# -- SSRF ---------------------------------------------------------------------------------------

REFUSED = [
    "http://127.0.0.1:8080",
    "https://127.0.0.1",
    "https://10.0.0.1",
    "https://10.255.1.2",
    "https://172.16.0.1",
    "https://192.168.1.1",
    "https://169.254.169.254",
    "https://100.64.0.1",
    "https://0.0.0.0",
    "https://[::1]",
    "https://[fe80::1]",
    "https://[::ffff:10.0.0.1]",
    "https://240.0.0.1",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_targets_are_refused_when_not_allowed(app, monkeypatch, url):
    # IP literals only: resolving them sends nothing anywhere.
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_NETWORK_TARGETS", False)
    monkeypatch.setitem(app.config, "NETWORK_TARGETS_LOOPBACK_ONLY", False)
    with app.app_context(), pytest.raises(TargetRefused):
        check_target(url, user_given=True)


def test_allowed_private_targets_and_loopback_only_mode(app, monkeypatch):
    with app.app_context():
        check_target("http://127.0.0.1:5000", user_given=True)  # the test configuration
        with pytest.raises(TargetRefused, match="loopback only"):
            check_target("https://mastodon.social", user_given=True)
        with pytest.raises(TargetRefused):
            check_target("https://10.0.0.1", user_given=False)


def test_api_refuses_private_instance_without_sending_anything(
    app, client, make_agency, mastodon, monkeypatch
):
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_NETWORK_TARGETS", False)
    monkeypatch.setitem(app.config, "NETWORK_TARGETS_LOOPBACK_ONLY", False)
    owner = make_agency("Ssrf")
    brand = owner.brands[0]
    for url in (mastodon.url, "https://10.1.2.3", "https://169.254.169.254"):
        connect = client.post(
            f"/v1/brands/{brand}/accounts/connect",
            json={"network": "mastodon", "instance_url": url},
            headers=owner.headers,
        )
        assert connect.status_code == 422, connect.get_json()
        assert "instance_url" in connect.get_json()["errors"]
        direct = client.post(
            f"/v1/brands/{brand}/accounts",
            json={"network": "mastodon", "instance_url": url, "access_token": "t"},
            headers=owner.headers,
        )
        assert direct.status_code == 422
    bluesky = client.post(
        f"/v1/brands/{brand}/accounts",
        json={
            "network": "bluesky",
            "handle": "a.test",
            "app_password": "p",
            "pds_url": "https://[::1]:2583",
        },
        headers=owner.headers,
    )
    assert bluesky.status_code == 422
    assert "pds_url" in bluesky.get_json()["errors"]
    assert mastodon.requests == []


@pytest.mark.parametrize(
    "url", ["ftp://example.org", "https://user:pw@127.0.0.1", "https://127.0.0.1/path", "nope"]
)
def test_instance_url_must_be_a_base_url(client, make_agency, url):
    owner = make_agency("Urls")
    response = client.post(
        f"/v1/brands/{owner.brands[0]}/accounts/connect",
        json={"network": "mastodon", "instance_url": url},
        headers=owner.headers,
    )
    assert response.status_code == 422
    assert "instance_url" in response.get_json()["errors"]
