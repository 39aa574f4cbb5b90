"""Publishing at the connector level for X, LinkedIn, Facebook and Instagram, against local
fakes that follow each network's documented API (tests/fakes/{x,linkedin,meta}.py).

The first part runs one battery over the four networks: success, media, a dead token, content
the network refuses (its own message comes back), a 429 (retry_after), a 5xx on the request
that creates the post (none of these networks has an idempotency key, so the outcome is
unknown and the reconciler looks first), a timeout after sending (unknown, then found), a
connection dropped before the network saw the request (unknown, then not found: publishing
again posts once), and delete. The second part covers what is particular to each network.
Mastodon and Bluesky have modules of their own.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from app.networks import connector_for
from app.networks.base import (
    Connector,
    ContentRejected,
    CredentialsRejected,
    MediaItem,
    NetworkAccount,
    NetworkError,
    NotSupported,
    OutcomeUnknown,
    PublishRequest,
    TokenExpired,
    TransientNetworkError,
)
from app.networks.linkedin import little_text
from tests.fakes.linkedin import FakeLinkedInNetwork
from tests.fakes.meta import IG_USER, FakeMetaNetwork
from tests.fakes.x import FakeXNetwork
from tests.publish_helpers import jpeg, media_item, publish_request

NETWORKS = ["x", "linkedin", "facebook", "instagram"]
ORGANIZATION = "urn:li:organization:2414183"


@dataclass
class Target:
    """One network under test: its connector, fake, account and where its post is created."""

    network: str
    connector: Connector
    fake: object
    account: NetworkAccount
    create_path: str
    upload_path: str
    counted: Callable[[], int]
    # Instagram cannot post text alone: every request gets a picture (by public URL).
    needs_media: bool = False
    extra: dict = field(default_factory=dict)

    def request(self, text: str = "Hello from Relais", **options) -> PublishRequest:
        if self.needs_media and "media" not in options:
            options["media"] = (picture(),)
        return publish_request(text, **options)


def picture(alt: str | None = "A teal square", colour: str = "teal") -> MediaItem:
    data = jpeg(colour=colour)
    return media_item(
        data,
        content_type="image/jpeg",
        alt_text=alt,
        filename="square.jpg",
        url=f"https://media.example/{colour}.jpg",
    )


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def fakes(app, monkeypatch) -> Iterator[dict]:
    cfg = app.config
    servers = {
        "x": FakeXNetwork(cfg["X_CLIENT_ID"], cfg["X_CLIENT_SECRET"]).start(),
        "linkedin": FakeLinkedInNetwork(
            cfg["LINKEDIN_CLIENT_ID"], cfg["LINKEDIN_CLIENT_SECRET"]
        ).start(),
        "meta": FakeMetaNetwork(cfg["META_APP_ID"], cfg["META_APP_SECRET"]).start(),
    }
    monkeypatch.setitem(cfg, "X_API_URL", servers["x"].url)
    monkeypatch.setitem(cfg, "LINKEDIN_API_URL", servers["linkedin"].url)
    monkeypatch.setitem(cfg, "META_GRAPH_URL", servers["meta"].url)
    for network in NETWORKS:
        monkeypatch.setattr(type(connector_for(network)), "media_poll_seconds", 0.01)
    yield servers
    for server in servers.values():
        server.stop()


def target_for(network: str, fakes: dict) -> Target:
    connector = connector_for(network)
    if network == "x":
        fake = fakes["x"]
        account = NetworkAccount(
            external_id=fake.user_id("alice"),
            secrets={"access_token": fake.token("alice"), "refresh_token": "rt-x"},
            token_expires_at=datetime.now(UTC) + timedelta(hours=2),
        )
        return Target(
            network,
            connector,
            fake,
            account,
            "/2/tweets",
            "/2/media/upload/initialize",
            lambda: fake.posts_made,
        )
    if network == "linkedin":
        fake = fakes["linkedin"]
        account = NetworkAccount(
            external_id=ORGANIZATION,
            secrets={"access_token": fake.token("alice")},
            account_kind="organization",
        )
        return Target(
            network,
            connector,
            fake,
            account,
            "/rest/posts",
            "/rest/images",
            lambda: fake.posts_made,
        )
    fake = fakes["meta"]
    if network == "facebook":
        account = NetworkAccount(external_id="1001", secrets={"access_token": fake.token()})
        return Target(
            network,
            connector,
            fake,
            account,
            "/1001/feed",
            "/1001/photos",
            lambda: fake.facebook_posts_made,
        )
    account = NetworkAccount(
        external_id=IG_USER, secrets={"access_token": fake.token(), "page_id": "1001"}
    )
    return Target(
        network,
        connector,
        fake,
        account,
        f"/{IG_USER}/media_publish",
        f"/{IG_USER}/media",
        lambda: fake.instagram_posts_made,
        needs_media=True,
    )


@pytest.fixture(params=NETWORKS)
def target(request, ctx, fakes) -> Target:
    return target_for(request.param, fakes)


# -- the battery --------------------------------------------------------------------------------


def test_publish(target):
    published = target.connector.publish(target.account, target.request("Soft opening tonight"))
    assert published.external_id
    assert published.url and published.url.startswith("https://")
    assert target.counted() == 1


def test_publish_with_two_pictures(target):
    media = (picture(), picture(alt=None, colour="navy"))
    published = target.connector.publish(target.account, target.request("Two", media=media))
    assert published.external_id and target.counted() == 1


def test_dead_token_is_credentials_rejected(target):
    account = NetworkAccount(
        target.account.external_id,
        {**target.account.secrets, "access_token": "not-a-token"},
        account_kind=target.account.account_kind,
    )
    with pytest.raises(CredentialsRejected):
        target.connector.publish(account, target.request())
    assert target.counted() == 0


def test_content_refused_carries_the_networks_own_message(target):
    message = "This post goes against our standards on spam."
    target.fake.reject_next(target.create_path, message)
    with pytest.raises(ContentRejected) as refused:
        target.connector.publish(target.account, target.request())
    assert str(refused.value) == message
    assert target.counted() == 0


def test_rate_limit_is_transient_with_retry_after(target):
    if target.network == "x":
        target.fake.throttle_next(target.create_path, 600)
        expected = range(590, 602)
    elif target.network == "linkedin":
        target.fake.throttle_next(target.create_path, 600)
        expected = range(600, 601)
    else:
        target.fake.throttle_next(target.create_path, 10)  # minutes
        expected = range(600, 601)
    with pytest.raises(TransientNetworkError) as limited:
        target.connector.publish(target.account, target.request())
    assert limited.value.retry_after in expected
    assert target.counted() == 0


def test_server_error_on_the_create_is_unknown_and_reconciled(target):
    """No idempotency key on these networks: a 500 may come after the post was stored, so it
    is never retried blindly. Here the network stored nothing: nothing is found, and
    publishing again posts once."""
    request = target.request("After a 500")
    since = datetime.now(UTC)
    target.fake.error_next(target.create_path, 500)
    with pytest.raises(OutcomeUnknown) as unknown:
        target.connector.publish(target.account, request)
    assert unknown.value.status == 500
    assert target.connector.find_existing(target.account, request, since=since) is None
    target.connector.publish(target.account, request)
    assert target.counted() == 1


def test_503_on_the_create_is_transient(target):
    target.fake.fail_next(target.create_path, 503, {"message": "Service Unavailable"})
    with pytest.raises(TransientNetworkError) as failed:
        target.connector.publish(target.account, target.request())
    assert failed.value.status == 503 and target.counted() == 0


def test_upload_failure_is_transient_and_posts_nothing(target):
    """Media go up before the post is made (two pictures: one alone is the very request that
    makes a Facebook post)."""
    target.fake.error_next(target.upload_path, 500)
    media = (picture(), picture(colour="navy"))
    with pytest.raises(TransientNetworkError):
        target.connector.publish(target.account, target.request(media=media))
    assert target.counted() == 0


def test_timeout_after_sending_is_unknown_then_found(target, ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "NETWORK_HTTP_TIMEOUT_SECONDS", 0.3)
    request = target.request("Answer lost https://example.com/menu")
    since = datetime.now(UTC)
    target.fake.answer_late_next(target.create_path, 1.0)
    with pytest.raises(OutcomeUnknown):
        target.connector.publish(target.account, request)
    assert target.counted() == 1  # the network did make it

    found = target.connector.find_existing(target.account, request, since=since)
    assert found is not None and found.external_id
    assert (
        target.connector.find_existing(target.account, target.request("Other"), since=since) is None
    )


def test_connection_dropped_before_the_network_saw_it(target):
    request = target.request("Dropped on the way")
    since = datetime.now(UTC)
    target.fake.drop_next(target.create_path)
    with pytest.raises(OutcomeUnknown):
        target.connector.publish(target.account, request)
    assert target.connector.find_existing(target.account, request, since=since) is None
    target.connector.publish(target.account, request)
    assert target.counted() == 1


def test_find_existing_looks_no_further_back_than_the_attempt(target):
    request = target.request("Earlier words")
    target.connector.publish(target.account, request)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert target.connector.find_existing(target.account, request, since=later) is None


def test_delete_and_delete_again(target):
    published = target.connector.publish(target.account, target.request("Short-lived"))
    target.connector.delete(target.account, published.external_id)
    target.connector.delete(target.account, published.external_id)  # already gone


def test_connection_refused_is_transient_and_nothing_is_sent(target):
    request = target.request("Before sending")
    target.fake.refuse_connections()
    with pytest.raises(TransientNetworkError):
        target.connector.publish(target.account, request)
    target.fake.accept_connections()
    target.connector.publish(target.account, request)
    assert target.counted() == 1


# -- X ------------------------------------------------------------------------------------------


@pytest.fixture
def x(ctx, fakes) -> Target:
    return target_for("x", fakes)


def test_x_media_go_up_in_chunks_with_alt_text(x, monkeypatch):
    monkeypatch.setattr(type(x.connector), "chunk_bytes", 400)
    image = picture()
    x.connector.publish(x.account, x.request("With a picture", media=(image,)))
    [media] = x.fake.media.values()
    assert media["received"] == image.size_bytes
    assert len(media["segments"]) == -(-image.size_bytes // 400)
    assert media["alt_text"] == "A teal square"
    [tweet] = x.fake.tweets.values()
    assert tweet["media_ids"] == [media["id"]]


def test_x_video_waits_for_processing(x):
    x.fake.processing_polls = 3
    video = media_item(b"\x00" * 2048, content_type="video/mp4", alt_text=None, filename="clip.mp4")
    x.connector.publish(x.account, x.request("A clip", media=(video,)))
    statuses = [r for r in x.fake.hits("/2/media/upload") if r.method == "GET"]
    assert len(statuses) == 4  # in_progress three times, then succeeded


def test_x_daily_limit_waits_for_the_24_hour_reset(x):
    x.fake.throttle_next("/2/tweets", 7200, daily=True)
    with pytest.raises(TransientNetworkError) as limited:
        x.connector.publish(x.account, x.request())
    assert 7190 <= limited.value.retry_after <= 7201


def test_x_duplicate_and_too_long_tweets_are_refused_with_xs_words(x):
    x.connector.publish(x.account, x.request("Same again"))
    with pytest.raises(ContentRejected, match="duplicate content"):
        x.connector.publish(x.account, x.request("Same again"))
    with pytest.raises(ContentRejected, match="too long"):
        x.connector.publish(x.account, x.request("x" * 300))


def test_x_app_without_access_is_an_operator_problem(x):
    x.fake.fail_next(
        "/2/tweets",
        403,
        {
            "title": "Client Forbidden",
            "detail": "This request must be made using an approved developer account.",
            "type": "https://api.twitter.com/2/problems/client-forbidden",
            "reason": "client-not-enrolled",
        },
    )
    with pytest.raises(NetworkError) as refused:
        x.connector.publish(x.account, x.request())
    assert not isinstance(refused.value, ContentRejected | CredentialsRejected)


def test_x_expired_token_asks_for_a_refresh_before_sending(x):
    expired = NetworkAccount(
        x.account.external_id,
        x.account.secrets,
        token_expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    with pytest.raises(TokenExpired):
        x.connector.publish(expired, x.request())
    assert x.fake.hits("/2/tweets") == []


# -- LinkedIn -----------------------------------------------------------------------------------


@pytest.fixture
def linkedin(ctx, fakes) -> Target:
    return target_for("linkedin", fakes)


def test_linkedin_commentary_is_escaped_and_hashtags_kept(linkedin):
    text = "Grand (re)opening at Café_Lumière! #Relais @everyone"
    published = linkedin.connector.publish(linkedin.account, linkedin.request(text))
    post = linkedin.fake.posts[published.external_id]
    assert post["commentary"] == little_text(text)
    assert post["commentary"] == (
        "Grand \\(re\\)opening at Café\\_Lumière! {hashtag|\\#|Relais} \\@everyone"
    )
    assert published.url == f"https://www.linkedin.com/feed/update/{published.external_id}/"


def test_linkedin_pictures_with_alt_text(linkedin):
    media = (picture(), picture(alt="Navy", colour="navy"))
    published = linkedin.connector.publish(linkedin.account, linkedin.request("Two", media=media))
    images = linkedin.fake.posts[published.external_id]["content"]["multiImage"]["images"]
    assert [i.get("altText") for i in images] == ["A teal square", "Navy"]
    single = linkedin.connector.publish(
        linkedin.account, linkedin.request("One", media=(picture(),))
    )
    content = linkedin.fake.posts[single.external_id]["content"]
    assert content["media"]["altText"] == "A teal square"


def test_linkedin_video_goes_up_in_parts(linkedin):
    linkedin.fake.video_part_bytes = 1000
    data = bytes(range(256)) * 10
    video = media_item(data, content_type="video/mp4", alt_text=None, filename="clip.mp4")
    published = linkedin.connector.publish(
        linkedin.account, linkedin.request("Clip", media=(video,))
    )
    urn = linkedin.fake.posts[published.external_id]["content"]["media"]["id"]
    asset = linkedin.fake.assets[urn]
    assert b"".join(asset["data"][i] for i in sorted(asset["data"])) == data
    assert len(asset["data"]) == 3


def test_linkedin_member_posts(linkedin):
    member = NetworkAccount(
        external_id=linkedin.fake.member_urn("alice"),
        secrets=linkedin.account.secrets,
        account_kind="member",
    )
    request = linkedin.request("As myself")
    published = linkedin.connector.publish(member, request)
    assert linkedin.fake.posts[published.external_id]["author"] == member.external_id
    # Reading a member's posts back needs a permission LinkedIn keeps for partners.
    with pytest.raises(NotSupported):
        linkedin.connector.find_existing(member, request, since=datetime.now(UTC))


def test_linkedin_page_the_member_does_not_administer(linkedin):
    stranger = NetworkAccount("urn:li:organization:999", linkedin.account.secrets)
    with pytest.raises(CredentialsRejected, match="Not enough permissions"):
        linkedin.connector.publish(stranger, linkedin.request())


def test_linkedin_expired_token_with_a_refresh_token_asks_for_a_refresh(linkedin):
    linkedin.fake.fail_next(
        "/rest/posts",
        401,
        {"status": 401, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token expired"},
    )
    account = NetworkAccount(
        ORGANIZATION, {**linkedin.account.secrets, "refresh_token": "rt-partner"}
    )
    with pytest.raises(TokenExpired):
        linkedin.connector.publish(account, linkedin.request())


# -- Facebook -----------------------------------------------------------------------------------


@pytest.fixture
def facebook(ctx, fakes) -> Target:
    return target_for("facebook", fakes)


def test_facebook_link_goes_as_link(facebook):
    request = facebook.request("Our menu", link="https://example.com/menu")
    published = facebook.connector.publish(facebook.account, request)
    post = facebook.fake.objects[published.external_id]
    assert post["message"] == "Our menu" and post["link"] == "https://example.com/menu"


def test_facebook_one_photo_uploaded_with_caption_and_alt_text(facebook):
    image = media_item(jpeg(), content_type="image/jpeg", alt_text="Teal", filename="t.jpg")
    published = facebook.connector.publish(
        facebook.account, facebook.request("A photo", media=(image,))
    )
    [photo] = facebook.fake.of_kind("photo")
    assert photo["source"] == f"upload:{image.size_bytes}"  # the bytes, no public URL given
    assert photo["alt_text"] == "Teal"
    assert facebook.fake.objects[published.external_id]["message"] == "A photo"


def test_facebook_several_photos_make_one_post(facebook):
    media = (picture(), picture(colour="navy"), picture(colour="red"))
    published = facebook.connector.publish(facebook.account, facebook.request("Three", media=media))
    post = facebook.fake.objects[published.external_id]
    assert len(post["attached"]) == 3
    assert all(not p["published"] for p in facebook.fake.of_kind("photo"))
    assert facebook.fake.facebook_posts_made == 1


def test_facebook_video_by_url(facebook):
    video = media_item(
        b"\x00" * 64,
        content_type="video/mp4",
        alt_text=None,
        filename="clip.mp4",
        url="https://media.example/clip.mp4",
    )
    published = facebook.connector.publish(
        facebook.account, facebook.request("Clip", media=(video,))
    )
    [stored] = facebook.fake.of_kind("video")
    assert stored["source"] == "https://media.example/clip.mp4"
    assert published.external_id == stored["id"]


# -- Instagram ----------------------------------------------------------------------------------


@pytest.fixture
def instagram(ctx, fakes) -> Target:
    return target_for("instagram", fakes)


def test_instagram_waits_for_the_container(instagram):
    instagram.fake.processing_polls = 3
    published = instagram.connector.publish(instagram.account, instagram.request("Wait for it"))
    [container] = instagram.fake.of_kind("container")
    assert container["status_code"] == "PUBLISHED"
    assert container["alt_text"] == "A teal square"
    assert container["url"] == "https://media.example/teal.jpg"
    polls = [r for r in instagram.fake.requests if r.path == f"/{container['id']}"]
    assert len(polls) == 4
    assert published.url.startswith("https://www.instagram.com/p/")


def test_instagram_carousel(instagram):
    media = (picture(), picture(colour="navy"))
    published = instagram.connector.publish(
        instagram.account, instagram.request("Two", media=media)
    )
    post = instagram.fake.objects[published.external_id]
    assert post["media_type"] == "CAROUSEL_ALBUM"
    children = [c for c in instagram.fake.of_kind("container") if c["carousel_item"]]
    assert len(children) == 2


def test_instagram_needs_media_and_public_urls(instagram):
    with pytest.raises(ContentRejected, match="at least one picture"):
        instagram.connector.publish(instagram.account, publish_request("Text only"))
    no_url = media_item(jpeg(), content_type="image/jpeg")
    with pytest.raises(NetworkError, match="public URL"):
        instagram.connector.publish(instagram.account, publish_request("x", media=(no_url,)))
    assert instagram.fake.requests == []


def test_instagram_media_it_cannot_fetch_is_refused_with_its_message(instagram):
    broken = MediaItem(
        content_type="image/jpeg",
        size_bytes=3,
        open=lambda: io.BytesIO(b"abc"),
        url="ftp://media.example/x.jpg",
    )
    with pytest.raises(ContentRejected, match="Media download has failed"):
        instagram.connector.publish(instagram.account, publish_request("x", media=(broken,)))
    assert instagram.fake.instagram_posts_made == 0


# -- hostile answers ----------------------------------------------------------------------------


def test_a_huge_answer_to_the_create_is_unknown_and_not_read(x):
    x.fake.fail_next("/2/tweets", 201, b"[" * 3_000_000, **{"Content-Type": "application/json"})
    with pytest.raises(OutcomeUnknown):
        x.connector.publish(x.account, x.request())


def test_a_deeply_nested_answer_is_refused_unread(x):
    nested = ("[" * 5000 + "]" * 5000).encode()
    x.fake.fail_next(
        "/2/media/upload/initialize", 200, nested, **{"Content-Type": "application/json"}
    )
    with pytest.raises(NetworkError, match="unreadable"):
        x.connector.publish(x.account, x.request(media=(picture(),)))
    assert x.fake.posts_made == 0
