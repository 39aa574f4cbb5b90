"""A brand's client sees only what the agency has put before them: posts waiting for the
client's approval and posts from approval on. Drafts, posts in internal review, rejected and
cancelled posts do not exist for them (404, left out of lists and the calendar), nor do media
that no post they see uses. The rule: app/services/lifecycle.py (CLIENT_VISIBLE_STATUSES)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models import PostStatus
from app.services import audit, lifecycle

AT = datetime(2031, 6, 2, 9, 0, tzinfo=UTC)  # a Monday
# (status, approval stage) -> whether the brand's client sees a post in that state.
STATES = {
    ("draft", None): False,
    ("in_review", "internal"): False,
    ("in_review", "client"): True,
    ("approved", None): True,
    ("scheduled", None): True,
    ("publishing", None): True,
    ("published", None): True,
    ("partially_published", None): True,
    ("failed", None): True,
    ("unknown", None): True,
    ("rejected", None): False,
    ("cancelled", None): False,
}
POST_READS = ("", "/activity", "/deliveries", "/variants")
NEVER_EXISTED = "pst_01J0000000000000000000000Z"


def test_every_status_is_decided():
    assert {status for status, _ in STATES} == {s.value for s in PostStatus}


@pytest.fixture
def brand(factory, make_agency, invite_user):
    """A brand with a post in every state (each with a variant, a delivery, an audit event and
    a media item of its own), media shared or unused, and a client user."""
    owner = make_agency("Visible", brands=1, approval_mode="internal_and_client")
    brand_id = owner.brands[0]
    customer = invite_user(owner, brand_id=brand_id, brand_role="client")
    editor = invite_user(owner, brand_id=brand_id, brand_role="editor")
    made: dict = {"posts": {}, "media": {}}
    with factory.in_brand(owner, brand_id) as rows:
        account = rows.account(handle="acc")

        def media(name: str) -> str:
            made["media"][name] = rows.media(filename=f"{name}.png").id
            return made["media"][name]

        shared = media("shared")  # in a draft and in a visible post
        media("unused")
        for n, (status, stage) in enumerate(STATES):
            own = media(f"{status}-{stage}")
            in_variant = media(f"variant-{status}-{stage}")
            post = rows.post(
                text=f"secret {status} {stage}",
                status=status,
                approval_stage=stage,
                scheduled_at=AT + timedelta(hours=n),
                media_ids=[own, shared] if status in ("draft", "approved") else [own],
                variants={account.id: {"media_ids": [in_variant]}},
            )
            rows.delivery(post, account.id)
            audit.record(
                "post.created",
                actor=audit.SYSTEM,
                agency_id=owner.agency_id,
                brand_id=brand_id,
                target_type="post",
                target_id=post.id,
                data={},
            )
            made["posts"][(status, stage)] = post.id
    return owner, customer, editor, brand_id, made


def _ids(client, url, actor) -> set[str]:
    ids, cursor = set(), None
    while True:
        response = client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=actor.headers)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        ids |= {item["id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def test_lists_show_the_client_only_posts_put_before_them(client, brand):
    owner, customer, editor, brand_id, made = brand
    visible = {made["posts"][state] for state, shown in STATES.items() if shown}
    everything = set(made["posts"].values())
    url = f"/v1/brands/{brand_id}/posts?limit=5"
    assert _ids(client, url, customer) == visible
    for staff in (owner, editor):
        assert _ids(client, url, staff) == everything
    for status in ("draft", "rejected", "cancelled"):
        assert _ids(client, f"{url}&status={status}", customer) == set()
    in_review = _ids(client, f"{url}&status=in_review", customer)
    assert in_review == {made["posts"][("in_review", "client")]}


@pytest.mark.parametrize("read", POST_READS)
def test_a_hidden_post_is_a_404_on_every_read(client, brand, read):
    owner, customer, _, brand_id, made = brand
    for state, shown in STATES.items():
        url = f"/v1/brands/{brand_id}/posts/{made['posts'][state]}{read}"
        as_client = client.get(url, headers=customer.headers)
        assert as_client.status_code == (200 if shown else 404), (state, as_client.get_json())
        if not shown:
            # Exactly what a post that never existed answers.
            never = NEVER_EXISTED
            unknown = client.get(
                url.replace(made["posts"][state], never), headers=customer.headers
            ).get_json()
            problem = as_client.get_json()
            assert problem["detail"] == unknown["detail"].replace(never, made["posts"][state])
            assert problem["title"] == unknown["title"] and "secret" not in str(problem)
        assert client.get(url, headers=owner.headers).status_code == 200


def test_a_hidden_post_is_a_404_to_act_on_too(client, brand):
    """Not a 403 that would confirm the post exists: the client cannot tell it from nothing."""
    _, customer, _, brand_id, made = brand
    hidden = made["posts"][("in_review", "internal")]
    base = f"/v1/brands/{brand_id}/posts/{hidden}"
    calls = [
        ("PATCH", base, {"text": "x"}),
        ("DELETE", base, None),
        ("POST", f"{base}/approve", {}),
        ("POST", f"{base}/reject", {"comment": "no"}),
        ("POST", f"{base}/submit", None),
        ("POST", f"{base}/cancel", None),
        ("POST", f"{base}/schedule", {"at": "2031-01-01T10:00:00Z"}),
        ("POST", f"{base}/unschedule", None),
    ]
    for method, url, body in calls:
        response = client.open(url, method=method, json=body, headers=customer.headers)
        assert response.status_code == 404, (method, url, response.get_json())
    # The post waiting for the client: they see it, and approve it.
    waiting = made["posts"][("in_review", "client")]
    url = f"/v1/brands/{brand_id}/posts/{waiting}"
    assert client.patch(url, json={"text": "x"}, headers=customer.headers).status_code == 403
    approved = client.post(f"{url}/approve", json={}, headers=customer.headers)
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"


def test_the_calendar_shows_the_client_only_posts_put_before_them(client, brand, monkeypatch):
    owner, customer, _, brand_id, made = brand
    # Today every post that holds a slot is one the client sees; hold drafts too, to prove
    # the calendar filters rather than relies on that.
    monkeypatch.setattr(lifecycle, "HOLDS_SLOT", lifecycle.HOLDS_SLOT | {PostStatus.DRAFT.value})
    client.put(
        f"/v1/brands/{brand_id}/posting-slots",
        json={"slots": [{"weekday": "monday", "time": "09:00"}]},  # the draft's instant (UTC)
        headers=owner.headers,
    )
    query = "from=2031-06-02T00:00:00Z&to=2031-06-03T00:00:00Z"
    url = f"/v1/brands/{brand_id}/calendar?{query}"
    seen = client.get(url, headers=customer.headers).get_json()
    staff = client.get(url, headers=owner.headers).get_json()
    draft = made["posts"][("draft", None)]
    assert draft in {p["id"] for p in staff["posts"]}
    assert {p["id"] for p in seen["posts"]} == {p["id"] for p in staff["posts"] if p["id"] != draft}
    assert "secret draft" not in str(seen)
    # The draft still holds its instant: the client is not offered it as a free slot.
    assert seen["free_slots"] == staff["free_slots"]


def test_the_client_sees_only_the_media_of_posts_they_see(client, brand):
    owner, customer, _, brand_id, made = brand
    media = made["media"]
    visible = {"shared"} | {
        f"{prefix}{status}-{stage}"
        for (status, stage), shown in STATES.items()
        if shown
        for prefix in ("", "variant-")
    }
    listed = _ids(client, f"/v1/brands/{brand_id}/media?limit=7", customer)
    assert listed == {media[name] for name in visible}
    assert _ids(client, f"/v1/brands/{brand_id}/media?limit=7", owner) == set(media.values())
    for name, media_id in media.items():
        url = f"/v1/brands/{brand_id}/media/{media_id}"
        expected = 200 if name in visible else 404
        assert client.get(url, headers=customer.headers).status_code == expected, name
        assert client.get(url, headers=owner.headers).status_code == 200
        if name not in visible:
            assert client.get(f"{url}/content", headers=customer.headers).status_code == 404
            assert client.delete(url, headers=customer.headers).status_code == 404
    # What the client sees, they still may not change.
    url = f"/v1/brands/{brand_id}/media/{media['shared']}"
    assert client.delete(url, headers=customer.headers).status_code == 403
