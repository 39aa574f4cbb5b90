"""Posts: drafts, variants, approval per mode (a client approving through the API), ETags,
validation naming account and field, deliveries and the status roll-up, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import tenancy
from app.extensions import db
from app.models import DeliveryStatus, Post, PostStatus
from app.services import audit, deliveries, lifecycle


def _brand(client, owner, mode: str) -> str:
    response = client.post(
        "/v1/brands", json={"name": f"B {mode}", "approval_mode": mode}, headers=owner.headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _create(client, actor, brand_id, **fields):
    response = client.post(f"/v1/brands/{brand_id}/posts", json=fields, headers=actor.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _act(client, actor, brand_id, post_id, action, expect=200, **body):
    response = client.post(
        f"/v1/brands/{brand_id}/posts/{post_id}/{action}", json=body, headers=actor.headers
    )
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def _schedule(app, owner, post_id: str, when: datetime):
    with app.app_context():
        tenancy.enter_agency(owner.agency_id)
        post = db.session.get(Post, post_id)
        ids = [d.id for d in deliveries.plan_deliveries(post, when, actor=audit.SYSTEM)]
        db.session.commit()
        return ids


IN_A_DAY = datetime.now(UTC) + timedelta(days=1)


def test_create_get_list_filters_and_variants(client, make_agency, factory):
    owner = make_agency("Posts", brands=1)
    brand_id = owner.brands[0]
    masto = factory.account(owner, brand_id, "mastodon")
    bsky = factory.account(owner, brand_id, "bluesky")
    post = _create(
        client,
        owner,
        brand_id,
        text="Hello world",
        labels=["launch", "spring"],
        campaign="Spring",
        internal_notes="check the date with legal",
        account_ids=[masto, bsky],
        variants=[{"account_id": bsky, "text": "Hello sky"}],
    )
    assert post["id"].startswith("pst_")
    assert post["status"] == "draft"
    assert post["labels"] == ["launch", "spring"]
    assert post["account_ids"] == [masto, bsky]
    by_account = {v["account_id"]: v for v in post["variants"]}
    assert by_account[bsky]["text"] == "Hello sky" and by_account[masto]["text"] is None
    other = _create(client, owner, brand_id, text="Other", labels=["autumn"])

    def listed(**query):
        response = client.get(
            f"/v1/brands/{brand_id}/posts", query_string=query, headers=owner.headers
        )
        assert response.status_code == 200, response.get_json()
        return [p["id"] for p in response.get_json()["items"]]

    assert listed() == [post["id"], other["id"]]
    assert listed(label="launch") == [post["id"]]
    assert listed(campaign="Spring") == [post["id"]]
    assert listed(status="in_review") == []
    assert listed(limit=1) == [post["id"]]

    _schedule(client.application, owner, post["id"], IN_A_DAY)
    window = {"from": (IN_A_DAY - timedelta(hours=1)).isoformat()}
    assert listed(**window) == [post["id"]]
    assert listed(to=(IN_A_DAY - timedelta(hours=1)).isoformat()) == []
    naive = client.get(
        f"/v1/brands/{brand_id}/posts",
        query_string={"from": "2026-03-29T09:00:00"},
        headers=owner.headers,
    )
    assert naive.status_code == 422

    unknown_account = client.post(
        f"/v1/brands/{brand_id}/posts",
        json={"text": "x", "account_ids": ["acc_01JD5ZQ7R9X4M2B8C6N3P1T0VW"]},
        headers=owner.headers,
    )
    assert unknown_account.status_code == 404
    assert "account_ids" in unknown_account.get_json()["errors"]


def test_validation_errors_name_account_and_field(app, client, make_agency, factory):
    owner = make_agency("Valid", brands=0)
    brand_id = _brand(client, owner, "internal")
    masto = factory.account(owner, brand_id, "mastodon")
    bsky = factory.account(owner, brand_id, "bluesky")
    post = _create(client, owner, brand_id, text="x" * 400, account_ids=[masto, bsky])
    response = client.post(
        f"/v1/brands/{brand_id}/posts/{post['id']}/submit", headers=owner.headers
    )
    assert response.status_code == 422
    problem = response.get_json()
    assert list(problem["errors"]) == [f"accounts.{bsky}.text"]
    assert bsky in problem["detail"] and "bluesky" in problem["detail"]

    # A shorter Bluesky variant fixes it.
    fixed = client.patch(
        f"/v1/brands/{brand_id}/posts/{post['id']}",
        json={"variants": [{"account_id": bsky, "text": "short"}]},
        headers=owner.headers,
    )
    assert fixed.status_code == 200, fixed.get_json()
    assert _act(client, owner, brand_id, post["id"], "submit")["status"] == "in_review"

    no_target = _create(client, owner, brand_id, text="nowhere")
    problem = _act(client, owner, brand_id, no_target["id"], "submit", expect=422)
    assert "account_ids" in problem["errors"]


def test_mode_none_schedules_drafts_and_refuses_submit(app, client, make_agency, factory):
    owner = make_agency("None", brands=0)
    brand_id = _brand(client, owner, "none")
    account = factory.account(owner, brand_id)
    post = _create(client, owner, brand_id, text="direct", account_ids=[account])
    _act(client, owner, brand_id, post["id"], "submit", expect=409)
    _schedule(app, owner, post["id"], IN_A_DAY)
    got = client.get(f"/v1/brands/{brand_id}/posts/{post['id']}", headers=owner.headers)
    assert got.get_json()["status"] == "scheduled"
    # No review in this brand: editing keeps the schedule.
    edited = client.patch(
        f"/v1/brands/{brand_id}/posts/{post['id']}", json={"text": "direct!"}, headers=owner.headers
    )
    assert edited.get_json()["status"] == "scheduled"


def test_internal_mode_flow_with_roles(app, client, make_agency, invite_user, factory):
    owner = make_agency("Internal", brands=0)
    brand_id = _brand(client, owner, "internal")
    account = factory.account(owner, brand_id)
    editor = invite_user(owner, brand_id=brand_id, brand_role="editor")
    approver = invite_user(owner, brand_id=brand_id, brand_role="approver")
    customer = invite_user(owner, brand_id=brand_id, brand_role="client")

    post = _create(client, editor, brand_id, text="Draft", account_ids=[account])
    # Approved content only: a draft cannot be scheduled in a reviewing brand.
    with app.app_context():
        tenancy.enter_agency(owner.agency_id)
        with pytest.raises(Exception, match="approved"):
            deliveries.plan_deliveries(
                db.session.get(Post, post["id"]), IN_A_DAY, actor=audit.SYSTEM
            )

    _act(client, approver, brand_id, post["id"], "submit", expect=403)
    _act(client, editor, brand_id, post["id"], "submit")
    _act(client, editor, brand_id, post["id"], "approve", expect=403)
    # In internal review: not the client's to see, let alone approve.
    _act(client, customer, brand_id, post["id"], "approve", expect=404)
    rejected = _act(client, approver, brand_id, post["id"], "reject", expect=422)
    assert "comment" in rejected["errors"]
    rejected = _act(client, approver, brand_id, post["id"], "reject", comment="Typo in line 1")
    assert rejected["status"] == "rejected" and rejected["review_comment"] == "Typo in line 1"

    client.patch(
        f"/v1/brands/{brand_id}/posts/{post['id']}", json={"text": "Fixed"}, headers=editor.headers
    )
    _act(client, editor, brand_id, post["id"], "submit")
    approved = _act(client, approver, brand_id, post["id"], "approve", comment="ok")
    assert approved["status"] == "approved" and approved["approval_stage"] is None

    activity = client.get(
        f"/v1/brands/{brand_id}/posts/{post['id']}/activity", headers=customer.headers
    )
    assert activity.status_code == 200
    actions = [e["action"] for e in activity.get_json()["items"]]
    assert actions == [
        "post.created",
        "post.submitted",
        "post.rejected",
        "post.updated",
        "post.submitted",
        "post.approved",
    ]
    rejection = activity.get_json()["items"][2]
    assert rejection["data"]["comment"] == "Typo in line 1"
    assert rejection["actor_id"] == approver.user_id


def test_internal_and_client_mode_client_approves_through_api(
    app, client, make_agency, invite_user, factory
):
    owner = make_agency("Client", brands=0)
    brand_id = _brand(client, owner, "internal_and_client")
    account = factory.account(owner, brand_id)
    manager = invite_user(owner, brand_id=brand_id, brand_role="manager")
    customer = invite_user(owner, brand_id=brand_id, brand_role="client")

    post = _create(
        client,
        manager,
        brand_id,
        text="For the client",
        account_ids=[account],
        internal_notes="client is picky about emojis",
    )
    url = f"/v1/brands/{brand_id}/posts/{post['id']}"
    # A draft, then a post in internal review: the client does not see it yet.
    assert client.get(url, headers=customer.headers).status_code == 404
    _act(client, manager, brand_id, post["id"], "submit")
    assert client.get(url, headers=customer.headers).status_code == 404
    _act(client, customer, brand_id, post["id"], "approve", expect=404)  # internal step first
    after_internal = _act(client, manager, brand_id, post["id"], "approve")
    assert after_internal["status"] == "in_review"
    assert after_internal["approval_stage"] == "client"

    # Now put before the client: readable, without the agency's internal notes, not editable.
    seen_by_client = client.get(url, headers=customer.headers).get_json()
    assert seen_by_client["text"] == "For the client"
    assert seen_by_client["internal_notes"] is None
    assert client.patch(url, json={"text": "x"}, headers=customer.headers).status_code == 403
    _act(client, manager, brand_id, post["id"], "approve", expect=403)  # the client's turn

    # The client rejects, the agency fixes, both approve again.
    _act(client, customer, brand_id, post["id"], "reject", comment="Not this week")
    client.patch(
        f"/v1/brands/{brand_id}/posts/{post['id']}",
        json={"text": "Next week"},
        headers=manager.headers,
    )
    _act(client, manager, brand_id, post["id"], "submit")
    _act(client, owner, brand_id, post["id"], "approve")
    approved = _act(client, customer, brand_id, post["id"], "approve", comment="Go")
    assert approved["status"] == "approved"

    activity = client.get(
        f"/v1/brands/{brand_id}/posts/{post['id']}/activity", headers=manager.headers
    ).get_json()["items"]
    approvals = [
        (e["data"]["stage"], e["actor_id"]) for e in activity if e["action"] == "post.approved"
    ]
    assert approvals[-2:] == [("internal", owner.user_id), ("client", customer.user_id)]


def test_editing_approved_or_scheduled_content_goes_back_to_review(
    app, client, make_agency, factory
):
    owner = make_agency("Edit", brands=0)
    brand_id = _brand(client, owner, "internal")
    account = factory.account(owner, brand_id)
    post = _create(client, owner, brand_id, text="v1", account_ids=[account])
    _act(client, owner, brand_id, post["id"], "submit")
    _act(client, owner, brand_id, post["id"], "approve")

    # Labels and notes are not content: still approved.
    relabelled = client.patch(
        f"/v1/brands/{brand_id}/posts/{post['id']}",
        json={"labels": ["x"], "internal_notes": "n"},
        headers=owner.headers,
    ).get_json()
    assert relabelled["status"] == "approved"

    _schedule(app, owner, post["id"], IN_A_DAY)
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    assert len(client.get(f"{path}/deliveries", headers=owner.headers).get_json()["items"]) == 1
    edited = client.patch(path, json={"text": "v2"}, headers=owner.headers).get_json()
    assert edited["status"] == "in_review" and edited["approval_stage"] == "internal"
    assert edited["scheduled_at"] is None
    assert client.get(f"{path}/deliveries", headers=owner.headers).get_json()["items"] == []
    actions = [
        e["action"]
        for e in client.get(f"{path}/activity", headers=owner.headers).get_json()["items"]
    ]
    assert actions[-1] == "post.returned_to_review"


def test_etag_if_match_and_stale_412(client, make_agency):
    owner = make_agency("Etag", brands=1)
    brand_id = owner.brands[0]
    post = _create(client, owner, brand_id, text="v1")
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    etag = client.get(path, headers=owner.headers).headers["ETag"]
    first = client.patch(path, json={"text": "mine"}, headers={**owner.headers, "If-Match": etag})
    assert first.status_code == 200
    assert first.headers["ETag"] != etag
    second = client.patch(
        path, json={"text": "theirs"}, headers={**owner.headers, "If-Match": etag}
    )
    assert second.status_code == 412
    assert second.headers["Content-Type"].startswith("application/problem+json")
    assert client.get(path, headers=owner.headers).get_json()["text"] == "mine"


def test_delete_drafts_only_and_cancel(app, client, make_agency, factory):
    owner = make_agency("Del", brands=1)
    brand_id = owner.brands[0]
    account = factory.account(owner, brand_id)
    draft = _create(client, owner, brand_id, text="bye")
    path = f"/v1/brands/{brand_id}/posts/{draft['id']}"
    assert client.delete(path, headers=owner.headers).status_code == 204
    assert client.get(path, headers=owner.headers).status_code == 404

    post = _create(client, owner, brand_id, text="planned", account_ids=[account])
    _schedule(app, owner, post["id"], IN_A_DAY)
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    assert client.delete(path, headers=owner.headers).status_code == 409
    cancelled = _act(client, owner, brand_id, post["id"], "cancel")
    assert cancelled["status"] == "cancelled"
    delivered = client.get(f"{path}/deliveries", headers=owner.headers).get_json()["items"]
    assert [d["status"] for d in delivered] == ["cancelled"]
    # Content of a cancelled post is history.
    assert client.patch(path, json={"text": "again"}, headers=owner.headers).status_code == 409


def test_schedule_creates_one_delivery_per_account_and_rolls_up(app, client, make_agency, factory):
    owner = make_agency("Roll", brands=1)
    brand_id = owner.brands[0]
    accounts = [factory.account(owner, brand_id, n) for n in ("mastodon", "bluesky", "linkedin")]
    post = _create(client, owner, brand_id, text="three ways", account_ids=accounts)
    ids = _schedule(app, owner, post["id"], IN_A_DAY)
    assert len(ids) == 3
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    listed = client.get(f"{path}/deliveries", headers=owner.headers).get_json()["items"]
    assert {d["account_id"] for d in listed} == set(accounts)
    assert {d["status"] for d in listed} == {"scheduled"}
    assert client.get(path, headers=owner.headers).get_json()["status"] == "scheduled"

    # Rescheduling moves the same deliveries.
    assert _schedule(app, owner, post["id"], IN_A_DAY + timedelta(hours=2)) == ids

    def workers_report(statuses):
        with app.app_context():
            tenancy.enter_agency(owner.agency_id)
            post_row = db.session.get(Post, post["id"])
            for delivery, status in zip(deliveries.deliveries_of(post_row), statuses, strict=True):
                delivery.status = status
                if status == "published":
                    delivery.published_at = datetime.now(UTC)
            deliveries.refresh_post_status(post_row, actor=audit.SYSTEM)
            db.session.commit()
        return client.get(path, headers=owner.headers).get_json()

    assert workers_report(["publishing", "scheduled", "scheduled"])["status"] == "publishing"
    assert workers_report(["published", "failed", "publishing"])["status"] == "publishing"
    done = workers_report(["published", "failed", "published"])
    assert done["status"] == "partially_published" and done["published_at"] is not None


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], None),
        (["scheduled", "scheduled"], PostStatus.SCHEDULED),
        # Claimed a moment ahead, not taken by a job yet: still scheduled (and cancellable).
        (["queued", "scheduled"], PostStatus.SCHEDULED),
        (["publishing", "scheduled"], PostStatus.PUBLISHING),
        (["published", "scheduled"], PostStatus.PUBLISHING),
        (["published", "published"], PostStatus.PUBLISHED),
        (["published", "cancelled"], PostStatus.PUBLISHED),
        (["published", "failed"], PostStatus.PARTIALLY_PUBLISHED),
        (["failed", "failed"], PostStatus.FAILED),
        (["published", "unknown"], PostStatus.UNKNOWN),
        (["cancelled", "cancelled"], PostStatus.CANCELLED),
    ],
)
def test_roll_up(statuses, expected):
    assert lifecycle.roll_up(statuses) == expected
    assert all(s in {d.value for d in DeliveryStatus} for s in statuses)


def test_another_brands_post_is_404(client, make_agency, invite_user):
    owner = make_agency("Iso", brands=2)
    mine, theirs = owner.brands
    post = _create(client, owner, theirs, text="secret")
    # Same agency, wrong brand in the path.
    for method, suffix, body in [
        ("get", "", None),
        ("patch", "", {"text": "mine now"}),
        ("delete", "", None),
        ("get", "/activity", None),
        ("get", "/deliveries", None),
        ("post", "/submit", None),
        ("post", "/approve", {}),
        ("post", "/reject", {"comment": "c"}),
        ("post", "/cancel", None),
    ]:
        response = getattr(client, method)(
            f"/v1/brands/{mine}/posts/{post['id']}{suffix}", json=body, headers=owner.headers
        )
        assert response.status_code == 404, (method, suffix, response.status_code)
    # A member of the other brand only, and another agency entirely.
    editor = invite_user(owner, brand_id=mine, brand_role="editor")
    stranger = make_agency("Stranger", brands=1)
    for actor in (editor, stranger):
        response = client.get(f"/v1/brands/{theirs}/posts/{post['id']}", headers=actor.headers)
        assert response.status_code == 404
        listed = client.get(f"/v1/brands/{theirs}/posts", headers=actor.headers)
        assert listed.status_code == 404


def test_variants_per_account(app, client, make_agency, factory):
    owner = make_agency("Variants", brands=2)
    brand_id, other_brand = owner.brands
    masto = factory.account(owner, brand_id, "mastodon")
    bsky = factory.account(owner, brand_id, "bluesky")
    foreign = factory.account(owner, other_brand, "bluesky")
    post = _create(client, owner, brand_id, text="Hello", account_ids=[masto])
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"

    put = client.put(f"{path}/variants/{bsky}", json={"text": "Hi sky"}, headers=owner.headers)
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["account_id"] == bsky and put.get_json()["text"] == "Hi sky"
    listed = client.get(f"{path}/variants", headers=owner.headers).get_json()["items"]
    assert {v["account_id"]: v["text"] for v in listed} == {masto: None, bsky: "Hi sky"}

    reset = client.put(f"{path}/variants/{bsky}", json={}, headers=owner.headers)
    assert reset.get_json()["text"] is None
    assert (
        client.put(f"{path}/variants/{foreign}", json={}, headers=owner.headers).status_code == 404
    )

    assert client.delete(f"{path}/variants/{masto}", headers=owner.headers).status_code == 204
    assert client.get(path, headers=owner.headers).get_json()["account_ids"] == [bsky]
    assert client.delete(f"{path}/variants/{masto}", headers=owner.headers).status_code == 404


def test_approving_a_stale_version_is_412(client, make_agency, factory):
    owner = make_agency("StaleApprove", brands=0)
    brand_id = _brand(client, owner, "internal")
    account = factory.account(owner, brand_id)
    post = _create(client, owner, brand_id, text="v1", account_ids=[account])
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    _act(client, owner, brand_id, post["id"], "submit")
    seen = client.get(path, headers=owner.headers).headers["ETag"]
    client.patch(path, json={"text": "v2, changed while in review"}, headers=owner.headers)
    stale = client.post(f"{path}/approve", json={}, headers={**owner.headers, "If-Match": seen})
    assert stale.status_code == 412
    assert client.get(path, headers=owner.headers).get_json()["status"] == "in_review"


def test_simultaneous_writers_lose_with_412_not_500(client, make_agency, monkeypatch):
    """Both pass If-Match at once; the version column stops the second write."""
    from sqlalchemy import update

    import app.api.http as http_api

    owner = make_agency("Race", brands=1)
    brand_id = owner.brands[0]
    post = _create(client, owner, brand_id, text="v1")

    def other_writer_commits_first(obj):
        db.session.execute(
            update(Post).where(Post.id == obj.id).values(version=Post.version + 1),
            execution_options={"synchronize_session": False},
        )

    monkeypatch.setattr(http_api, "check_if_match", other_writer_commits_first)
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    response = client.patch(path, json={"text": "mine"}, headers=owner.headers)
    assert response.status_code == 412, response.get_json()
    assert response.get_json()["status"] == 412


def test_account_needing_reconnect_is_named_before_review(app, client, make_agency, factory):
    owner = make_agency("Health", brands=0)
    brand_id = _brand(client, owner, "internal")
    account = factory.account(owner, brand_id, "mastodon", health="needs_reconnect")
    post = _create(client, owner, brand_id, text="hello", account_ids=[account])
    problem = _act(client, owner, brand_id, post["id"], "submit", expect=422)
    assert list(problem["errors"]) == [f"accounts.{account}.account"]


def test_brand_leaving_client_approval_does_not_strand_posts(
    client, make_agency, invite_user, factory
):
    owner = make_agency("Switch", brands=0)
    brand_id = _brand(client, owner, "internal_and_client")
    account = factory.account(owner, brand_id)
    customer = invite_user(owner, brand_id=brand_id, brand_role="client")
    post = _create(client, owner, brand_id, text="hello", account_ids=[account])
    _act(client, owner, brand_id, post["id"], "submit")
    assert _act(client, owner, brand_id, post["id"], "approve")["approval_stage"] == "client"
    switched = client.patch(
        f"/v1/brands/{brand_id}", json={"approval_mode": "internal"}, headers=owner.headers
    )
    assert switched.status_code == 200
    _act(client, customer, brand_id, post["id"], "approve", expect=403)
    assert _act(client, owner, brand_id, post["id"], "approve")["status"] == "approved"


def test_create_is_idempotent_with_a_key(client, make_agency):
    owner = make_agency("Idem", brands=1)
    brand_id = owner.brands[0]
    headers = {**owner.headers, "Idempotency-Key": "post-1"}
    first = client.post(f"/v1/brands/{brand_id}/posts", json={"text": "once"}, headers=headers)
    again = client.post(f"/v1/brands/{brand_id}/posts", json={"text": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    other = client.post(f"/v1/brands/{brand_id}/posts", json={"text": "twice"}, headers=headers)
    assert other.status_code == 422
    listed = client.get(f"/v1/brands/{brand_id}/posts", headers=owner.headers).get_json()
    assert len(listed["items"]) == 1


def test_media_order_and_per_account_media(app, client, make_agency, factory):
    owner = make_agency("Media", brands=1)
    brand_id = owner.brands[0]
    account = factory.account(owner, brand_id, "mastodon")
    first, second = (
        factory.media(
            owner,
            brand_id,
            filename=f"{n}.png",
            size_bytes=1000,
            width=10,
            height=10,
            alt_text="a picture",
        )
        for n in ("one", "two")
    )
    post = _create(client, owner, brand_id, text="pics", media_ids=[first, second])
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    assert post["media_ids"] == [first, second]
    swapped = client.patch(path, json={"media_ids": [second, first]}, headers=owner.headers)
    assert swapped.status_code == 200, swapped.get_json()
    assert swapped.get_json()["media_ids"] == [second, first]
    variant = client.put(
        f"{path}/variants/{account}", json={"media_ids": []}, headers=owner.headers
    ).get_json()
    assert variant["media_ids"] == []
    _schedule(app, owner, post["id"], IN_A_DAY)
    assert client.get(path, headers=owner.headers).get_json()["status"] == "scheduled"


def test_relabelling_with_overlapping_labels(client, make_agency):
    owner = make_agency("Labels", brands=1)
    brand_id = owner.brands[0]
    post = _create(client, owner, brand_id, text="x", labels=["a", "b"])
    path = f"/v1/brands/{brand_id}/posts/{post['id']}"
    relabelled = client.patch(path, json={"labels": ["c", "b", "b"]}, headers=owner.headers)
    assert relabelled.status_code == 200, relabelled.get_json()
    assert relabelled.get_json()["labels"] == ["b", "c"]
