"""Bluesky publishing against a REAL local PDS (@atproto/pds, started by the suite on
127.0.0.1): facets at the right UTF-8 byte offsets, images with alt text and aspect ratio,
threads only when asked, and exactly once under retries and lost answers (a proxy in front of
the PDS drops or delays answers; the PDS's own repository is counted with listRecords).
Skipped, saying why, when Node/npm are missing or the PDS cannot be installed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.networks import connector_for
from app.networks.base import (
    ContentRejected,
    CredentialsRejected,
    NetworkAccount,
    OutcomeUnknown,
    TokenExpired,
)
from app.networks.bluesky import BlueskyConnector
from app.networks.bluesky_text import part_key, record_key
from tests.fakes.proxy import FaultyProxy
from tests.peers.bluesky_pds import BlueskyPds, PdsAccount
from tests.publish_helpers import media_item, png, publish_request

pytestmark = pytest.mark.slow

CREATE = "/xrpc/com.atproto.repo.createRecord"


@pytest.fixture(scope="module")
def pds() -> Iterator[BlueskyPds]:
    server = BlueskyPds.start_or_skip()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def people(pds) -> dict[str, PdsAccount]:
    return {name: pds.create_account(name) for name in ("poster", "bobby")}


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def connector() -> BlueskyConnector:
    connector = connector_for("bluesky")
    assert isinstance(connector, BlueskyConnector)
    return connector


@pytest.fixture
def account(ctx, connector, pds, people) -> NetworkAccount:
    person = people["poster"]
    connected = connector.connect_direct(
        {"handle": person.handle, "app_password": person.app_password, "pds_url": pds.url}
    )
    return NetworkAccount(
        external_id=connected.identity.external_id,
        secrets=connected.tokens.secrets,
        instance_url=pds.url,
    )


@pytest.fixture
def proxy(pds) -> Iterator[FaultyProxy]:
    server = FaultyProxy(pds.url).start()
    yield server
    server.stop()


def through(proxy: FaultyProxy, account: NetworkAccount) -> NetworkAccount:
    return NetworkAccount(account.external_id, account.secrets, proxy.url, account.account_kind)


def posts_in_repo(pds: BlueskyPds, did: str) -> list[dict]:
    records, cursor = [], None
    while True:
        params = {"repo": did, "collection": "app.bsky.feed.post", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.listRecords", params=params).json()
        records += page["records"]
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            return records


def record_at(pds: BlueskyPds, uri: str) -> dict:
    did, collection, rkey = uri.removeprefix("at://").split("/")
    answer = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.getRecord",
        params={"repo": did, "collection": collection, "rkey": rkey},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["value"]


def faceted(text: str, record: dict) -> list[tuple[str, dict]]:
    """Each facet's bytes of the text, decoded, with its feature."""
    data = text.encode()
    return [
        (data[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"][0])
        for f in record.get("facets") or []
    ]


def test_text_with_link_mention_and_hashtag_facets_after_emoji(account, connector, pds, people):
    friend = people["bobby"]
    text = f"👩‍👩‍👧 Café ☕ with @{friend.handle} at https://example.com/menu. #Relais! 🎉"
    published = connector.publish(account, publish_request(text, language="fr"))

    record = record_at(pds, published.external_id)
    assert record["text"] == text
    assert record["langs"] == ["fr"]
    assert faceted(text, record) == [
        (f"@{friend.handle}", {"$type": "app.bsky.richtext.facet#mention", "did": friend.did}),
        (
            "https://example.com/menu",
            {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/menu"},
        ),
        ("#Relais", {"$type": "app.bsky.richtext.facet#tag", "tag": "Relais"}),
    ]
    rkey = published.external_id.rsplit("/", 1)[1]
    assert published.url == f"https://bsky.app/profile/{account.external_id}/post/{rkey}"
    assert published.published_at is not None


def test_unknown_handles_stay_plain_text_and_the_link_is_appended(account, connector, pds):
    request = publish_request("Hi @nobody.test", link="https://example.org/")
    published = connector.publish(account, request)
    record = record_at(pds, published.external_id)
    assert record["text"] == "Hi @nobody.test\n\nhttps://example.org/"
    assert faceted(record["text"], record) == [
        (
            "https://example.org/",
            {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/"},
        )
    ]


def test_images_with_alt_text_and_aspect_ratio(account, connector, pds):
    wide = media_item(png(120, 60), width=120, height=60, alt_text="A wide teal banner")
    square = media_item(png(40, 40), width=40, height=40, alt_text=None)
    published = connector.publish(account, publish_request("Pictures", media=(wide, square)))

    embed = record_at(pds, published.external_id)["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    first, second = embed["images"]
    assert first["alt"] == "A wide teal banner" and second["alt"] == ""
    assert (first["aspectRatio"]["width"], first["aspectRatio"]["height"]) == (120, 60)
    assert (second["aspectRatio"]["width"], second["aspectRatio"]["height"]) == (40, 40)
    assert first["image"]["mimeType"] == "image/png"
    assert first["image"]["size"] == wide.size_bytes
    # The blob is kept by the PDS, referenced by the record.
    blob = httpx.get(
        f"{pds.url}/xrpc/com.atproto.sync.getBlob",
        params={"did": account.external_id, "cid": first["image"]["ref"]["$link"]},
    )
    assert blob.status_code == 200 and blob.content == png(120, 60)


def test_a_retried_publish_finds_the_record_instead_of_posting_twice(account, connector, pds):
    before = len(posts_in_repo(pds, account.external_id))
    request = publish_request("Exactly once, please")
    first = connector.publish(account, request)
    again = connector.publish(account, request)  # a worker retrying the same delivery
    assert again.external_id == first.external_id
    rkey = record_key(request.idempotency_key, request.scheduled_for)
    assert first.external_id == f"at://{account.external_id}/app.bsky.feed.post/{rkey}"
    assert len(posts_in_repo(pds, account.external_id)) == before + 1

    found = connector.find_existing(account, request, since=datetime.now(UTC))
    assert found is not None and found.external_id == first.external_id


def test_an_answer_lost_after_sending_is_unknown_then_found(
    account, connector, pds, proxy, monkeypatch, ctx
):
    monkeypatch.setitem(ctx.config, "NETWORK_HTTP_TIMEOUT_SECONDS", 1.0)
    via_proxy = through(proxy, account)
    before = len(posts_in_repo(pds, account.external_id))
    request = publish_request("Lost in transit")
    since = datetime.now(UTC)

    proxy.answer_late_next(CREATE, 3.0)
    with pytest.raises(OutcomeUnknown):
        connector.publish(via_proxy, request)
    found = connector.find_existing(via_proxy, request, since=since)
    assert found is not None

    # The connection dropped after the PDS stored it: unknown again; publishing again is safe.
    other = publish_request("Dropped after storing")
    proxy.drop_next(CREATE, after_handling=True)
    with pytest.raises(OutcomeUnknown):
        connector.publish(via_proxy, other)
    assert connector.publish(via_proxy, other).external_id
    assert len(posts_in_repo(pds, account.external_id)) == before + 2


def test_a_connection_dropped_before_the_pds_saw_it_posts_nothing(account, connector, pds, proxy):
    via_proxy = through(proxy, account)
    before = len(posts_in_repo(pds, account.external_id))
    request = publish_request("Never arrived")
    proxy.drop_next(CREATE)
    with pytest.raises(OutcomeUnknown):
        connector.publish(via_proxy, request)
    assert connector.find_existing(via_proxy, request, since=datetime.now(UTC)) is None
    assert len(posts_in_repo(pds, account.external_id)) == before


def test_threads_only_when_asked(account, connector, pds):
    words = " ".join(f"word{n}" for n in range(120))  # ~800 characters
    with pytest.raises(ContentRejected) as refused:
        connector.publish(account, publish_request(words))
    assert "300" in str(refused.value)  # the PDS's own message: the grapheme limit

    request = publish_request(words, thread=True)
    published = connector.publish(account, request)
    root_key = published.external_id.rsplit("/", 1)[1]
    parts = [record_at(pds, published.external_id)]
    for index in (1, 2):
        uri = f"at://{account.external_id}/app.bsky.feed.post/{part_key(root_key, index)}"
        parts.append(record_at(pds, uri))
    assert " ".join(p["text"] for p in parts) == words
    assert all(len(p["text"]) <= 300 for p in parts)
    assert parts[1]["reply"]["root"]["uri"] == published.external_id
    assert parts[2]["reply"]["parent"]["uri"].endswith(part_key(root_key, 1))
    assert connector.find_existing(account, request, since=datetime.now(UTC)) is not None

    connector.delete(account, published.external_id)
    assert connector.find_existing(account, request, since=datetime.now(UTC)) is None
    keys = {r["uri"].rsplit("/", 1)[1] for r in posts_in_repo(pds, account.external_id)}
    assert not keys & {part_key(root_key, index) for index in (0, 1, 2)}


def test_delete(account, connector, pds):
    published = connector.publish(account, publish_request("Short-lived"))
    connector.delete(account, published.external_id)
    connector.delete(account, published.external_id)  # already gone
    uris = {r["uri"] for r in posts_in_repo(pds, account.external_id)}
    assert published.external_id not in uris


def _jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256K'})}.{part(claims)}.c2ln"


def test_expired_access_token_asks_for_a_refresh_without_sending(account, connector, proxy):
    expired = _jwt({"exp": int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())})
    secrets = {**account.secrets, "access_jwt": expired}
    stale = NetworkAccount(account.external_id, secrets, proxy.url)
    with pytest.raises(TokenExpired):
        connector.publish(stale, publish_request())
    assert proxy.requests == []


def test_a_token_the_pds_does_not_know_is_credentials_rejected(account, connector):
    future = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    forged = NetworkAccount(
        account.external_id,
        {**account.secrets, "access_jwt": _jwt({"exp": future, "sub": account.external_id})},
        account.instance_url,
    )
    with pytest.raises(CredentialsRejected):
        connector.publish(forged, publish_request())
