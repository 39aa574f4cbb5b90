"""Credentials no configured key decrypts are an operator's error, never the account's: the
refresh job leaves the account as it is and fails loudly; `relais accounts rotate-keys` names
each such row, goes on, and exits non-zero."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
import redis
from cryptography.fernet import Fernet
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from app import create_app
from app.models.base import utcnow
from app.security.crypto import CredentialsCipher
from app.services.token_refresh import UnreadableCredentials
from tests.accounts_helpers import raw_account_row, set_account_columns
from tests.fakes.oauth_networks import FakeMastodon


@pytest.fixture
def mastodon():
    fake = FakeMastodon().start()
    yield fake
    fake.stop()


def _connect(client, owner, mastodon, user: str) -> str:
    created = client.post(
        f"/v1/brands/{owner.brands[0]}/accounts",
        json={
            "network": "mastodon",
            "instance_url": mastodon.url,
            "access_token": mastodon.personal_token(user),
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def _audit_actions(client, owner) -> list[str]:
    events = client.get("/v1/audit-events?limit=100", headers=owner.headers).get_json()["items"]
    return [e["action"] for e in events]


def test_refresh_with_the_wrong_key_leaves_accounts_alone_and_fails_loudly(
    app, app_config, client, make_agency, mastodon, caplog
):
    from app.services import token_refresh

    owner = make_agency("Keys")
    account_id = _connect(client, owner, mastodon, "alice")
    set_account_columns(app, account_id, token_expires_at=utcnow() + timedelta(hours=1))
    before = raw_account_row(app, account_id)

    # A worker started with another key (e.g. without the production variables).
    wrong = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [Fernet.generate_key()]})
    unreadable = pytest.raises(UnreadableCredentials, match="CREDENTIALS_ENCRYPTION_KEYS")
    with wrong.app_context(), caplog.at_level(logging.ERROR), unreadable as failed:
        token_refresh.refresh_expiring_tokens()
    assert failed.value.account_ids == [account_id]
    assert failed.value.outcomes == {"unreadable": 1}
    assert any(account_id in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)

    after = raw_account_row(app, account_id)
    assert after["health"] == "active"
    for column in ("health", "last_error", "credentials_encrypted", "token_expires_at"):
        assert after[column] == before[column], column
    # Audited for the agency once (not every 15 minutes while the keys stay wrong).
    with wrong.app_context(), pytest.raises(UnreadableCredentials):
        token_refresh.refresh_expiring_tokens()
    actions = _audit_actions(client, owner)
    assert actions.count("social_account.credentials_unreadable") == 1
    assert "social_account.needs_reconnect" not in actions

    # With the right key the same run goes through (Mastodon tokens cannot be refreshed).
    with app.app_context():
        assert token_refresh.refresh_expiring_tokens() == {"expiring": 1}


def test_the_refresh_job_fails_in_rq_when_a_key_is_missing(
    app, app_config, client, make_agency, mastodon, redis_url
):
    owner = make_agency("Job")
    account_id = _connect(client, owner, mastodon, "bob")
    set_account_columns(app, account_id, token_expires_at=utcnow() + timedelta(hours=1))

    connection = redis.Redis.from_url(redis_url)
    queue = Queue(f"test-keys-{uuid.uuid4().hex}", connection=connection, serializer=JSONSerializer)
    job = queue.enqueue("workers.jobs.accounts.refresh_expiring_tokens")
    wrong = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [Fernet.generate_key()]})
    with wrong.app_context():
        SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(burst=True)
    job.refresh()
    try:
        assert job.is_failed
        assert "UnreadableCredentials" in job.latest_result().exc_string
        assert account_id in job.latest_result().exc_string
    finally:
        job.delete()
    assert raw_account_row(app, account_id)["health"] == "active"


def test_rotate_keys_names_unreadable_rows_and_goes_on(
    app, app_config, client, make_agency, mastodon
):
    owner = make_agency("Rotate")
    stray = _connect(client, owner, mastodon, "carol")
    readable = [_connect(client, owner, mastodon, user) for user in ("dave", "erin")]
    # One row encrypted with a key nobody configured any more.
    lost_key = Fernet.generate_key().decode()
    set_account_columns(
        app, stray, credentials_encrypted=CredentialsCipher([lost_key]).encrypt({"t": "x"})
    )
    old_key = app.config["CREDENTIALS_ENCRYPTION_KEYS"][0]
    new_key = Fernet.generate_key().decode()

    rotating = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [new_key, old_key]})
    result = rotating.test_cli_runner().invoke(args=["accounts", "rotate-keys"])
    assert result.exit_code == 1
    assert f"unreadable: social_accounts {stray}" in result.output
    assert "1 row(s) could not be decrypted" in result.output
    assert "social_accounts: 2" in result.output
    assert "Traceback" not in result.output
    for account_id in readable:  # the rows after the unreadable one were rotated too
        stored = bytes(raw_account_row(app, account_id)["credentials_encrypted"])
        assert CredentialsCipher([new_key]).decrypt(stored)["access_token"]
    stored = bytes(raw_account_row(app, stray)["credentials_encrypted"])
    assert CredentialsCipher([lost_key]).decrypt(stored) == {"t": "x"}  # left as it was
