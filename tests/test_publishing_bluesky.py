"""The publishing pipeline against a REAL local Bluesky PDS (@atproto/pds, started on
127.0.0.1): a post scheduled through the API goes out once, with its facets and its image, and
a publish whose answer is lost is found by the reconciler under its record key instead of being
made twice. The PDS's repository is counted with listRecords. Skipped, saying why, when the PDS
cannot be installed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.extensions import redis
from tests.fakes.proxy import FaultyProxy
from tests.media_files import image_bytes, upload
from tests.peers.bluesky_pds import BlueskyPds
from tests.pipeline import deliveries_of, tick

pytestmark = pytest.mark.slow

CREATE = "/xrpc/com.atproto.repo.createRecord"


@pytest.fixture(scope="module")
def pds() -> Iterator[BlueskyPds]:
    server = BlueskyPds.start_or_skip()
    yield server
    server.stop()


@pytest.fixture
def proxy(pds) -> Iterator[FaultyProxy]:
    server = FaultyProxy(pds.url).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _quick_pipeline(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLISH_RETRY_BASE_SECONDS", 0)
    monkeypatch.setitem(app.config, "PUBLISH_RECONCILE_DELAY_SECONDS", 0)
    with app.app_context():
        redis.client.flushdb()


def _records(pds: BlueskyPds, did: str) -> list[dict]:
    page = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post", "limit": 100},
    ).json()
    return page["records"]


def _connect(client, owner, brand_id, person, pds_url: str) -> str:
    created = client.post(
        f"/v1/brands/{brand_id}/accounts",
        json={
            "network": "bluesky",
            "handle": f"@{person.handle}",
            "app_password": person.app_password,
            "pds_url": pds_url,
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def _publish_now(client, owner, brand_id, body) -> str:
    made = client.post(f"/v1/brands/{brand_id}/posts", json=body, headers=owner.headers)
    assert made.status_code == 201, made.get_json()
    post_id = made.get_json()["id"]
    answer = client.post(
        f"/v1/brands/{brand_id}/posts/{post_id}/publish-now", headers=owner.headers
    )
    assert answer.status_code == 200, answer.get_json()
    return post_id


def test_text_with_facets_and_an_image_go_out_once(app, client, make_agency, pds):
    person, friend = pds.create_account("pipeposter"), pds.create_account("pipefriend")
    owner = make_agency("Sky", brands=1, approval_mode="none")
    brand_id = owner.brands[0]
    account = _connect(client, owner, brand_id, person, pds.url)
    picture = upload(
        client, owner, brand_id, image_bytes("PNG", (120, 80)), "cafe.png", alt_text="Our café"
    )
    assert picture.status_code == 201, picture.get_json()
    text = f"Café ☕ with @{friend.handle} at https://example.com/menu #Relais"
    post_id = _publish_now(
        client,
        owner,
        brand_id,
        {"text": text, "account_ids": [account], "media_ids": [picture.get_json()["id"]]},
    )
    tick(app)
    tick(app)

    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published", delivery
    [record] = _records(pds, person.did)
    assert record["uri"] == delivery["external_id"]
    value = record["value"]
    assert value["text"] == text
    features = {f["features"][0]["$type"] for f in value["facets"]}
    assert features == {
        "app.bsky.richtext.facet#mention",
        "app.bsky.richtext.facet#link",
        "app.bsky.richtext.facet#tag",
    }
    [image] = value["embed"]["images"]
    assert image["alt"] == "Our café"
    assert (image["aspectRatio"]["width"], image["aspectRatio"]["height"]) == (120, 80)


def test_a_lost_answer_is_found_under_its_record_key_not_posted_twice(
    app, client, make_agency, pds, proxy, monkeypatch
):
    person = pds.create_account("pipelost")
    owner = make_agency("Sky lost", brands=1, approval_mode="none")
    brand_id = owner.brands[0]
    account = _connect(client, owner, brand_id, person, proxy.url)
    post_id = _publish_now(client, owner, brand_id, {"text": "Once", "account_ids": [account]})
    proxy.drop_next(CREATE, after_handling=True)  # made on the PDS; the answer never comes
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "unknown", delivery
    assert len(_records(pds, person.did)) == 1

    tick(app)  # the reconciler looks under the delivery's record key
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published"
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["unknown", "found"]
    [record] = _records(pds, person.did)
    assert record["uri"] == delivery["external_id"]
    assert len(proxy.hits(CREATE)) == 1
