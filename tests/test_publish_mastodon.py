"""Mastodon publishing at the connector level, against a fake instance that follows the API
documentation (tests/fakes/mastodon.py); and the connect fixes: accounts named after the
instance's own domain, and a fresh token revoked when the account check after it fails."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

import pytest

from app.networks import connector_for
from app.networks.base import (
    AuthorizationRequest,
    ContentRejected,
    CredentialsRejected,
    NetworkAccount,
    OutcomeUnknown,
    TransientNetworkError,
)
from app.networks.mastodon import MastodonConnector
from tests.fakes.mastodon import FakeMastodonNetwork
from tests.publish_helpers import media_item, publish_request

STATUSES = "/api/v1/statuses"


@pytest.fixture
def fake():
    server = FakeMastodonNetwork().start()
    yield server
    server.stop()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def connector(monkeypatch) -> MastodonConnector:
    connector = connector_for("mastodon")
    assert isinstance(connector, MastodonConnector)
    monkeypatch.setattr(MastodonConnector, "media_poll_seconds", 0.01)
    return connector


def account_of(fake: FakeMastodonNetwork, user: str = "alice") -> NetworkAccount:
    return NetworkAccount(
        external_id=f"{fake.account_id(user)}@{fake.domain}",
        secrets={"access_token": fake.token(user), "token_type": "Bearer"},
        instance_url=fake.url,
    )


def test_text_with_options_and_idempotency_key(ctx, fake, connector):
    request = publish_request(
        "Soft opening tonight",
        link="https://example.com/menu",
        content_warning="Food",
        visibility="unlisted",
        language="fr",
    )
    published = connector.publish(account_of(fake), request)

    [sent] = fake.hits(STATUSES)
    assert sent.headers["idempotency-key"] == request.idempotency_key
    status = fake.statuses[published.external_id]
    assert status["_text"] == "Soft opening tonight\n\nhttps://example.com/menu"
    assert status["spoiler_text"] == "Food"
    assert status["visibility"] == "unlisted" and status["language"] == "fr"
    assert published.url == status["url"]
    assert published.published_at is not None
    assert fake.posts_made == 1


def test_media_with_alt_text_waits_for_processing(ctx, fake, connector):
    fake.processing_polls = 2  # 202 on upload, then 206 twice, then 200
    request = publish_request("Two pictures", media=(media_item(), media_item(alt_text=None)))
    published = connector.publish(account_of(fake), request)

    status = fake.statuses[published.external_id]
    assert [m["description"] for m in status["media_attachments"]] == ["A teal square", None]
    assert len(fake.hits(STATUSES)) == 1
    media_polls = [r for r in fake.requests if r.path.startswith("/api/v1/media/")]
    assert len(media_polls) == 6  # three per item: 206, 206, 200


def test_media_that_never_finishes_processing_is_transient_and_posts_nothing(
    ctx, fake, connector, monkeypatch
):
    fake.processing_polls = 10_000
    monkeypatch.setattr(MastodonConnector, "media_wait_seconds", 0.1)
    with pytest.raises(TransientNetworkError, match="still being processed"):
        connector.publish(account_of(fake), publish_request(media=(media_item(),)))
    assert fake.posts_made == 0 and not fake.hits(STATUSES)


def test_same_idempotency_key_makes_one_status(ctx, fake, connector):
    request = publish_request("Once only")
    first = connector.publish(account_of(fake), request)
    again = connector.publish(account_of(fake), request)
    assert again.external_id == first.external_id
    assert fake.posts_made == 1


def test_dead_token_is_credentials_rejected(ctx, fake, connector):
    account = account_of(fake)
    fake.access_tokens.clear()
    with pytest.raises(CredentialsRejected):
        connector.publish(account, publish_request())


def test_missing_scope_is_credentials_rejected(ctx, fake, connector):
    fake.fail_next(STATUSES, 403, {"error": "This action is outside the authorized scopes"})
    with pytest.raises(CredentialsRejected, match="outside the authorized scopes"):
        connector.publish(account_of(fake), publish_request())


def test_a_server_counting_differently_refuses_with_its_own_message(ctx, fake, connector):
    """What our rules accepted (Mastodon counts a URL as 23) a server counting URLs in full
    refuses: the delivery fails for good, saying what the server said."""
    fake.max_characters = 40
    text = "Our menu: https://example.com/a/very/long/path/to/the/menu"
    with pytest.raises(ContentRejected) as refused:
        connector.publish(account_of(fake), publish_request(text))
    assert str(refused.value) == "Validation failed: Text character limit of 40 exceeded"
    assert refused.value.status == 422
    assert fake.posts_made == 0


def test_rate_limit_gives_retry_after(ctx, fake, connector):
    fake.throttle_next(STATUSES, 90)
    with pytest.raises(TransientNetworkError) as limited:
        connector.publish(account_of(fake), publish_request())
    assert limited.value.retry_after == 90 and limited.value.status == 429

    # Without Retry-After, the reset time of Mastodon's own header says how long.
    fake.throttle_next(STATUSES, 120, retry_after_header=False)
    with pytest.raises(TransientNetworkError) as limited:
        connector.publish(account_of(fake), publish_request())
    assert 100 <= limited.value.retry_after <= 121
    assert fake.posts_made == 0


def test_retry_after_as_an_http_date(ctx, fake, connector):
    when = formatdate(time.time() + 120, usegmt=True)
    fake.fail_next(STATUSES, 429, {"error": "Too many requests"}, **{"Retry-After": when})
    with pytest.raises(TransientNetworkError) as limited:
        connector.publish(account_of(fake), publish_request())
    assert 100 <= limited.value.retry_after <= 121


def test_server_error_is_transient_because_the_key_makes_retries_safe(ctx, fake, connector):
    fake.error_next(STATUSES, 500)
    request = publish_request("After a 500")
    with pytest.raises(TransientNetworkError) as failed:
        connector.publish(account_of(fake), request)
    assert failed.value.status == 500
    assert connector.publish(account_of(fake), request).external_id
    assert fake.posts_made == 1


def test_media_upload_server_error_is_transient(ctx, fake, connector):
    fake.error_next("/api/v2/media", 503)
    with pytest.raises(TransientNetworkError):
        connector.publish(account_of(fake), publish_request(media=(media_item(),)))
    assert fake.posts_made == 0


def test_timeout_after_sending_is_unknown_and_find_existing_finds_the_status(
    ctx, fake, connector, monkeypatch
):
    monkeypatch.setitem(ctx.config, "NETWORK_HTTP_TIMEOUT_SECONDS", 0.3)
    account = account_of(fake)
    text = "Thanks @bob@other.example for https://example.com/a/very/long/link/to/read #relais"
    request = publish_request(text, media=(media_item(),))
    since = datetime.now(UTC)
    fake.answer_late_next(STATUSES, 1.0)
    with pytest.raises(OutcomeUnknown):
        connector.publish(account, request)
    assert fake.posts_made == 1  # the instance did make it

    found = connector.find_existing(account, request, since=since)
    assert found is not None
    assert found.external_id == next(iter(fake.statuses))
    assert found.url and found.published_at
    # The rendered HTML shows "@bob", not "@bob@other.example": the source text decided.
    assert any(r.path.endswith("/source") for r in fake.requests)


def test_connection_dropped_before_handling_is_unknown_and_nothing_is_found(ctx, fake, connector):
    account = account_of(fake)
    fake.post_by_hand("alice", "Something else entirely")
    request = publish_request("Dropped on the way")
    since = datetime.now(UTC)
    fake.drop_next(STATUSES)
    with pytest.raises(OutcomeUnknown):
        connector.publish(account, request)
    assert connector.find_existing(account, request, since=since) is None
    # The reconciler may now publish: once.
    connector.publish(account, request)
    assert fake.posts_made == 1


def test_find_existing_ignores_statuses_older_than_the_attempt(ctx, fake, connector):
    account = account_of(fake)
    request = publish_request("Same words")
    connector.publish(account, request)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert connector.find_existing(account, request, since=later) is None


def test_find_existing_pages_through_many_statuses(ctx, fake, connector, monkeypatch):
    account = account_of(fake)
    request = publish_request("Needle")
    since = datetime.now(UTC)
    connector.publish(account, request)
    for n in range(45):
        fake.post_by_hand("alice", f"Hay {n}")
    found = connector.find_existing(account, request, since=since)
    assert found is not None and fake.statuses[found.external_id]["_text"] == "Needle"
    assert len(fake.hits(f"/api/v1/accounts/{fake.account_id('alice')}/statuses")) == 2


def test_delete_and_delete_again(ctx, fake, connector):
    account = account_of(fake)
    published = connector.publish(account, publish_request("Short-lived"))
    connector.delete(account, published.external_id)
    assert published.external_id not in fake.statuses
    connector.delete(account, published.external_id)  # already gone: deleted all the same


def test_connection_refused_is_transient(ctx, fake, connector):
    account = account_of(fake)
    fake.stop()
    with pytest.raises(TransientNetworkError):
        connector.publish(account, publish_request())


# -- connecting ------------------------------------------------------------------------------


def test_handle_and_id_come_from_the_instance_domain_not_the_typed_url(ctx, connector):
    fake = FakeMastodonNetwork(domain="example.social").start()
    try:
        token = fake.token("alice")
        port = urlsplit(fake.url).port
        by_ip = connector.connect_direct({"access_token": token, "instance_url": fake.url})
        by_name = connector.connect_direct(
            {"access_token": token, "instance_url": f"http://localhost:{port}"}
        )
    finally:
        fake.stop()
    assert by_ip.identity.handle == "@alice@example.social"
    assert by_ip.identity.external_id == f"{fake.account_id('alice')}@example.social"
    assert by_name.identity.external_id == by_ip.identity.external_id
    assert by_ip.limits["max_characters"] == fake.max_characters


def test_servers_without_v2_instance_use_v1_uri(ctx, connector):
    fake = FakeMastodonNetwork().start()
    try:
        fake.routes.pop(("GET", "/api/v2/instance"))

        @fake.route("GET", "/api/v1/instance")
        def _v1(request):
            from tests.fakes.http_server import Response

            return Response(200, {"uri": "old.example", "title": "Old"})

        identity = connector.verify({"access_token": fake.token("carol")}, fake.url)
    finally:
        fake.stop()
    assert identity.handle == "@carol@old.example"


def test_fresh_token_is_revoked_when_the_account_check_fails(ctx, connector):
    fake = FakeMastodonNetwork().start()
    try:
        redirect = "http://127.0.0.1:9/oauth/callback"
        client_id, client_secret = connector.register_app(fake.url, redirect, "write:statuses")
        request = AuthorizationRequest(
            state="state-1",
            redirect_uri=redirect,
            code_verifier="v" * 64,
            instance_url=fake.url,
            extra={"client_id": client_id, "client_secret": client_secret},
        )
        code, _ = fake.approve(connector.authorization_url(request))
        fake.error_next("/api/v1/accounts/verify_credentials", 503)
        with pytest.raises(TransientNetworkError):
            connector.exchange_code(request, code)
        assert len(fake.revoked) == 1
        assert fake.revoked[0] not in fake.access_tokens  # the fresh token no longer works
        revocation = fake.hits("/oauth/revoke")[0]
        assert parse_qs(revocation.body.decode())["client_id"] == [client_id]
    finally:
        fake.stop()


def test_one_account_through_two_urls_of_one_server(client, make_agency):
    """The same person connected through http://127.0.0.1:port and http://localhost:port (two
    names of one server, whose accounts live at example.social) is one account of the brand."""
    fake = FakeMastodonNetwork(domain="example.social").start()
    try:
        owner = make_agency("Two names")
        brand = owner.brands[0]
        token = fake.token("alice")
        port = urlsplit(fake.url).port
        ids = []
        for url in (fake.url, f"http://localhost:{port}"):
            created = client.post(
                f"/v1/brands/{brand}/accounts",
                json={"network": "mastodon", "instance_url": url, "access_token": token},
                headers=owner.headers,
            )
            assert created.status_code in (200, 201), created.get_json()
            ids.append(created.get_json()["id"])
            assert created.get_json()["handle"] == "@alice@example.social"
        listed = client.get(f"/v1/brands/{brand}/accounts", headers=owner.headers).get_json()
    finally:
        fake.stop()
    assert ids[0] == ids[1]
    assert len(listed["items"]) == 1
