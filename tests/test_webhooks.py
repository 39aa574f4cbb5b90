"""Outgoing webhooks end to end: endpoints over the API, events emitted as posts, deliveries and
accounts move (app/services/lifecycle.py, account_health.mark_needs_reconnect), signed deliveries to
a real HTTP receiver on 127.0.0.1 verified with the `standardwebhooks` library, retries with
backoff, 410 and auto-disabling with a mail to the owner, redelivery, test events, secret
rotation with overlap, and what Redis may lose."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select, update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app import create_app, metrics, queue, tenancy
from app.extensions import db
from app.ids import new_id
from app.models import (
    Delivery,
    DeliveryStatus,
    Post,
    SocialAccount,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.models.base import utcnow
from app.security import crypto
from app.services import (
    account_health,
    audit,
    deliveries,
    lifecycle,
    token_refresh,
    webhook_delivery,
    webhook_endpoints,
    webhook_schedule,
    webhooks,
)
from tests.fakes.http_server import FakeServer, Request, Response
from tests.helpers import assert_problem, owner_connection
from tests.mail import read_mail, text_of

HOOK = "/hook"


# -- fixtures and helpers ----------------------------------------------------------------------


class _BurstWorker(SimpleWorker):
    """SimpleWorker without its command channel (see tests/mail.py)."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def run_webhook_jobs(app) -> None:
    """What a worker does, in process: every job on the `webhooks` queue, then stop."""
    with app.app_context():
        webhook_queue = queue.queue(queue.WEBHOOKS)
        worker = _BurstWorker(
            [webhook_queue], connection=webhook_queue.connection, serializer=JSONSerializer
        )
        worker.work(burst=True)


@pytest.fixture(autouse=True)
def _empty_webhook_queue(app):
    """Other tests leave deliveries on the queue (the matrices create endpoints): start clean."""
    with app.app_context():
        queue.queue(queue.WEBHOOKS).empty()
    yield


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1: answers 204 unless a test queues other answers."""
    server = FakeServer()
    server.route("POST", HOOK)(lambda request: Response(204))
    server.start()
    yield server
    server.stop()


def create_endpoint(client, actor, url: str, expect: int = 201, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/webhook-endpoints", json={"url": url, **fields}, headers=actor.headers
    )
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def emit(app, agency_id: str, event_type: str = "post.scheduled", **kwargs: Any) -> str | None:
    """Emit as a service would, in a transaction of the agency; returns the event id."""
    with app.app_context():
        tenancy.enter_agency(agency_id)
        emitted = webhooks.emit(
            event_type,
            agency_id=agency_id,
            brand_id=kwargs.get("brand_id"),
            data=kwargs.get("data", {"note": "from a test"}),
        )
        db.session.commit()
        return emitted.id if emitted else None


def deliveries_of(client, actor, endpoint_id: str, **query: str) -> list[dict[str, Any]]:
    response = client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", query_string=query, headers=actor.headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def endpoint_row(database, endpoint_id: str) -> Any:
    with owner_connection(database) as connection:
        return connection.execute(
            select(WebhookEndpoint.__table__).where(WebhookEndpoint.__table__.c.id == endpoint_id)
        ).one()


def shift_due(database, **where: Any) -> None:
    """Make pending deliveries due now, as if their wait had passed (and their last job was
    enqueued before it)."""
    table = WebhookDelivery.__table__
    now = utcnow()
    with owner_connection(database) as connection:
        connection.execute(
            update(table)
            .where(*(table.c[name] == value for name, value in where.items()))
            .where(table.c.status == "pending")
            .values(
                next_attempt_at=now - timedelta(seconds=1),
                enqueued_at=now - timedelta(seconds=2),
            )
        )


def webhook_mails(app, to: str) -> list[Any]:
    return [m for m in read_mail(app, to) if "webhook" in m["Subject"]]


def verified(request: Request, secret: str) -> dict[str, Any]:
    """What a real receiver does with what it got: the library's check, then the JSON."""
    return Webhook(secret).verify(request.body, request.headers)


# -- endpoints over the API ------------------------------------------------------------------------


def test_endpoint_crud_and_the_secret_shown_once(client, make_agency, database):
    owner = make_agency(brands=1)
    created = create_endpoint(
        client, owner, "http://127.0.0.1:9/hook", description="CRM", events=["post.approved"]
    )
    secret = created.pop("secret")
    assert secret.startswith("whsec_")
    Webhook(secret)  # a secret the library reads
    assert created["enabled"] is True and created["events"] == ["post.approved"]
    assert created["brand_ids"] is None

    url = f"/v1/webhook-endpoints/{created['id']}"
    read = client.get(url, headers=owner.headers)
    assert read.status_code == 200
    assert read.get_json() == created
    listed = client.get("/v1/webhook-endpoints", headers=owner.headers).get_json()
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert secret not in read.get_data(as_text=True) + json.dumps(listed)
    # Kept encrypted, and recoverable (it signs every message).
    stored = endpoint_row(database, created["id"]).secrets_encrypted
    assert secret.encode() not in bytes(stored)

    etag = read.headers["ETag"]
    changed = client.patch(
        url,
        json={"events": None, "brand_ids": [owner.brands[0]], "description": None},
        headers={**owner.headers, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["events"] is None
    assert changed.get_json()["brand_ids"] == [owner.brands[0]]
    stale = client.patch(
        url, json={"description": "x"}, headers={**owner.headers, "If-Match": etag}
    )
    assert_problem(stale, 412)

    assert client.delete(url, headers=owner.headers).status_code == 204
    assert_problem(client.get(url, headers=owner.headers), 404)


def test_preconditions_and_the_path_come_before_the_body(client, make_agency):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    url = f"/v1/webhook-endpoints/{endpoint['id']}"
    stale = {**owner.headers, "If-Match": '"whk_stale.v0"'}
    invalid = {"url": "not a url", "events": ["post.exploded"]}
    # RFC 9110 13.2.1: a stale If-Match is a 412 whatever the content.
    assert_problem(client.patch(url, json=invalid, headers=stale), 412)
    assert_problem(
        client.post(f"{url}/rotate-secret", json={"overlap_seconds": -1}, headers=stale), 412
    )
    assert_problem(client.delete(url, headers=stale), 412)
    # An endpoint that is not there is a 404 before its body is read.
    gone = f"/v1/webhook-endpoints/{new_id('whk')}"
    assert_problem(client.patch(gone, json=invalid, headers=owner.headers), 404)
    assert client.get(url, headers=owner.headers).status_code == 200  # nothing changed


def test_create_checks_event_types_brands_and_the_target(client, make_agency, app_config):
    owner = make_agency(brands=1)
    other = make_agency(brands=1)
    bad_event = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/h", "events": ["post.exploded"]},
        headers=owner.headers,
    )
    assert "events" in assert_problem(bad_event, 422)["errors"]
    # Another agency's brand answers as a brand that never existed: a 404 naming the field.
    foreign = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/h", "brand_ids": [other.brands[0]]},
        headers=owner.headers,
    )
    assert "brand_ids" in assert_problem(foreign, 404)["errors"]
    assert other.brands[0] in foreign.get_json()["detail"]
    for url in ("ftp://127.0.0.1/h", "http://user:pw@127.0.0.1/h", "http://10.0.0.8/h"):
        refused = client.post("/v1/webhook-endpoints", json={"url": url}, headers=owner.headers)
        assert "url" in assert_problem(refused, 422)["errors"], url

    # As in production (private targets not allowed): https to a public address only. The
    # addresses below are literals: nothing is resolved, nothing is sent.
    guarded = create_app(
        {
            **app_config,
            "ALLOW_PRIVATE_NETWORK_TARGETS": False,
            "NETWORK_TARGETS_LOOPBACK_ONLY": False,
        }
    ).test_client()
    for url in (
        "http://8.8.8.8/h",
        "https://127.0.0.1/h",
        "https://10.1.2.3/h",
        "https://169.254.169.254/h",
    ):
        refused = guarded.post("/v1/webhook-endpoints", json={"url": url}, headers=owner.headers)
        assert "url" in assert_problem(refused, 422)["errors"], url


def test_people_without_an_agency_wide_role_cannot_manage_endpoints(
    client, make_agency, invite_user
):
    owner = make_agency(brands=1)
    member = invite_user(owner, agency_role="member")
    manager = invite_user(owner, brand_id=owner.brands[0], brand_role="manager")
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    for actor in (member, manager):
        assert_problem(client.get("/v1/webhook-endpoints", headers=actor.headers), 403)
        assert_problem(
            client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=actor.headers), 403
        )


# -- delivery, signature, filters ----------------------------------------------------------------


def test_a_signed_event_reaches_the_receiver_and_verifies(app, client, make_agency, receiver):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    event_id = emit(app, owner.agency_id, "post.scheduled", brand_id=owner.brands[0])
    run_webhook_jobs(app)

    [request] = receiver.hits(HOOK)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event_id
    body = verified(request, endpoint["secret"])
    assert body["id"] == event_id and body["type"] == "post.scheduled"
    assert body["agency_id"] == owner.agency_id and body["brand_id"] == owner.brands[0]
    assert body["data"] == {"note": "from a test"}
    # Anyone else's secret, or a changed body, does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_endpoints.new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body + b" ", request.headers)

    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 204
    assert delivery["event_id"] == event_id and delivery["next_attempt_at"] is None
    read = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=owner.headers).get_json()
    assert read["last_success_at"] is not None and read["failing_since"] is None

    # A job that runs again (Redis handing it twice) finds nothing to send.
    with app.app_context():
        assert webhook_delivery.deliver(owner.agency_id, delivery["id"]) == "skipped"
    assert len(receiver.hits(HOOK)) == 1


def test_event_type_and_brand_filters(app, client, make_agency):
    owner = make_agency(brands=2)
    first, second = owner.brands
    approvals = create_endpoint(client, owner, "http://127.0.0.1:9/a", events=["post.approved"])
    second_brand = create_endpoint(client, owner, "http://127.0.0.1:9/b", brand_ids=[second])
    everything = create_endpoint(client, owner, "http://127.0.0.1:9/c")
    disabled = create_endpoint(client, owner, "http://127.0.0.1:9/d", enabled=False)

    emit(app, owner.agency_id, "post.scheduled", brand_id=first)
    emit(app, owner.agency_id, "post.approved", brand_id=second)
    emit(app, owner.agency_id, "account.needs_reconnect", brand_id=first)

    def received(endpoint) -> list[str]:
        return [d["event_type"] for d in deliveries_of(client, owner, endpoint["id"])]

    assert received(approvals) == ["post.approved"]
    assert received(second_brand) == ["post.approved"]
    assert received(everything) == ["post.scheduled", "post.approved", "account.needs_reconnect"]
    assert received(disabled) == []
    # No endpoint takes it: nothing is written at all.
    other = make_agency(brands=1)
    assert emit(app, other.agency_id, "post.scheduled", brand_id=other.brands[0]) is None


def test_an_event_rolled_back_with_its_change_is_never_sent(app, client, make_agency):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    with app.app_context():
        tenancy.enter_agency(owner.agency_id)
        webhooks.emit("post.scheduled", agency_id=owner.agency_id, brand_id=None, data={})
        db.session.rollback()
        assert queue.queue(queue.WEBHOOKS).count == 0
    assert deliveries_of(client, owner, endpoint["id"]) == []


def test_post_and_account_services_emit_their_events(
    app, client, make_agency, invite_user, receiver, factory
):
    owner = make_agency(brands=0)
    brand = client.post(
        "/v1/brands",
        json={"name": "Reviewed", "approval_mode": "internal_and_client"},
        headers=owner.headers,
    ).get_json()["id"]
    customer = invite_user(owner, brand_id=brand, brand_role="client")
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    account_id = factory.account(owner, brand, handle="brand@example.social")
    posts = f"/v1/brands/{brand}/posts"
    post = client.post(
        posts,
        json={"text": "Hello", "account_ids": [account_id], "internal_notes": "secret plans"},
        headers=owner.headers,
    ).get_json()

    def act(actor, action: str, **body: Any) -> None:
        response = client.post(f"{posts}/{post['id']}/{action}", json=body, headers=actor.headers)
        assert response.status_code == 200, response.get_json()

    def tomorrow(days: int = 1) -> str:
        return (utcnow() + timedelta(days=days)).isoformat()

    act(owner, "submit")
    act(owner, "approve")  # the internal step: now the client is asked
    act(customer, "reject", comment="Not like this")
    act(owner, "submit")
    act(owner, "approve")
    act(customer, "approve", comment="Go")
    act(owner, "schedule", at=tomorrow())
    # Moved, taken off the schedule (back to approved: no `post.approved` again), scheduled.
    act(owner, "reschedule", at=tomorrow(2))
    act(owner, "unschedule")
    act(owner, "schedule", at=tomorrow(3))
    # Scheduled content edited: back to review.
    edited = client.patch(f"{posts}/{post['id']}", json={"text": "Hi"}, headers=owner.headers)
    assert edited.status_code == 200, edited.get_json()
    act(owner, "cancel")  # no event of its own
    with app.app_context():  # the token-refresh job finds the account dead
        tenancy.enter_agency(owner.agency_id)
        dead = db.session.get(SocialAccount, account_id)
        assert token_refresh.refresh_account(dead) == "needs_reconnect"
        db.session.commit()
    run_webhook_jobs(app)

    bodies = [verified(r, endpoint["secret"]) for r in receiver.hits(HOOK)]
    seen = [(b["type"], b["data"].get("stage")) for b in bodies]
    assert seen == [
        ("post.approval_requested", "internal"),
        ("post.approval_requested", "client"),
        ("post.rejected", "client"),
        ("post.approval_requested", "internal"),
        ("post.approval_requested", "client"),
        ("post.approved", "client"),
        ("post.scheduled", None),
        ("post.scheduled", None),
        ("post.scheduled", None),
        ("post.approval_requested", "internal"),
        ("account.needs_reconnect", None),
    ]
    rejected = bodies[2]["data"]
    assert rejected["comment"] == "Not like this" and rejected["post"]["status"] == "rejected"
    assert bodies[5]["data"]["comment"] == "Go"
    assert bodies[5]["data"]["post"]["status"] == "approved"
    scheduled = bodies[6]["data"]["post"]
    assert scheduled["id"] == post["id"] and scheduled["status"] == "scheduled"
    assert scheduled["scheduled_at"] and scheduled["account_ids"] == [account_id]
    assert bodies[7]["data"]["post"]["scheduled_at"] != scheduled["scheduled_at"]
    assert "secret plans" not in json.dumps(bodies)  # internal notes stay inside
    assert bodies[10]["data"]["account"]["id"] == account_id
    assert bodies[10]["data"]["account"]["health"] == "needs_reconnect"
    assert all(b["brand_id"] == brand for b in bodies)


def _move(delivery: Delivery, *statuses: DeliveryStatus, **fields: Any) -> None:
    """Walk a delivery through the lifecycle, as the publishing pipeline does, setting `fields`
    before its last move (what the move comes with)."""
    *path, last = statuses
    for status in path:
        lifecycle.change_delivery_status(delivery, status)
    for name, value in fields.items():
        setattr(delivery, name, value)
    lifecycle.change_delivery_status(delivery, last)


def test_publishing_outcomes_are_emitted_by_moving_through_the_lifecycle(
    app, client, make_agency, receiver, factory
):
    owner = make_agency(brands=1)
    brand = owner.brands[0]
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    first = factory.account(owner, brand)
    second = factory.account(owner, brand)
    when = utcnow() + timedelta(minutes=5)
    with factory.in_brand(owner, brand) as rows:
        post = rows.post([first, second], status="scheduled", scheduled_at=when)
        for account_id in (first, second):
            rows.delivery(post, account_id, status="scheduled", scheduled_for=when)
        lonely = rows.post([first], status="scheduled", scheduled_at=when)
        rows.delivery(lonely, first, status="scheduled", scheduled_for=when)
        post_id, lonely_id = post.id, lonely.id

    def settle(post_id: str, *moves: tuple[str, tuple[DeliveryStatus, ...], dict]) -> None:
        """What the pipeline does: move deliveries, roll the post up, commit."""
        with app.app_context():
            tenancy.enter_agency(owner.agency_id)
            post = db.session.get(Post, post_id)
            by_account = {d.account_id: d for d in deliveries.deliveries_of(post)}
            for account_id, statuses, fields in moves:
                _move(by_account[account_id], *statuses, **fields)
            deliveries.refresh_post_status(post, actor=audit.SYSTEM)
            db.session.commit()

    sent = (DeliveryStatus.QUEUED, DeliveryStatus.PUBLISHING)
    # Claimed and taken by the workers: the post is publishing (nothing to announce yet).
    settle(post_id, (first, sent, {}), (second, sent, {}))
    settle(lonely_id, (first, sent, {}))
    # One goes out, the other's outcome is unknown (a timeout after sending).
    settle(
        post_id,
        (first, (DeliveryStatus.PUBLISHED,), {"external_url": "https://example.social/1"}),
        (second, (DeliveryStatus.UNKNOWN,), {}),
    )
    # The reconciler finds it on the network.
    settle(post_id, (second, (DeliveryStatus.PUBLISHED,), {}))
    # The other post fails for good.
    settle(lonely_id, (first, (DeliveryStatus.FAILED,), {"last_error": "The network said no."}))
    run_webhook_jobs(app)

    bodies = [verified(r, endpoint["secret"]) for r in receiver.hits(HOOK)]
    assert [b["type"] for b in bodies] == [
        "post.unknown",
        "post.published",
        "delivery.failed",
        "post.failed",
    ]
    unknown, published, failed_delivery, failed = (b["data"] for b in bodies)
    assert unknown["post"]["status"] == "unknown"
    assert {d["account_id"]: d["status"] for d in unknown["deliveries"]} == {
        first: "published",
        second: "unknown",
    }
    assert published["post"]["status"] == "published" and published["post"]["published_at"]
    assert [d["status"] for d in published["deliveries"]] == ["published", "published"]
    assert "https://example.social/1" in [d["external_url"] for d in published["deliveries"]]
    assert failed_delivery["delivery"]["post_id"] == lonely_id
    assert failed_delivery["delivery"]["last_error"] == "The network said no."
    assert failed["post"]["status"] == "failed"
    assert [d["status"] for d in failed["deliveries"]] == ["failed"]


def test_lifecycle_tables_name_only_documented_event_types():
    tables = [
        *lifecycle.POST_WEBHOOKS.values(),
        *lifecycle.PUBLISHING_WEBHOOKS.values(),
        *lifecycle.DELIVERY_WEBHOOKS.values(),
    ]
    assert set(tables) <= webhooks.EVENT_TYPES
    # Every event type but the account's is emitted by the lifecycle.
    assert webhooks.EVENT_TYPES - set(tables) == {"account.needs_reconnect"}
    assert set(lifecycle.PUBLISHING_WEBHOOKS.values()) == webhooks.POST_OUTCOMES


def test_an_account_needing_reconnection_is_announced_once(
    app, client, make_agency, receiver, factory
):
    owner = make_agency(brands=1)
    create_endpoint(client, owner, receiver.url + HOOK)
    account_id = factory.account(owner, owner.brands[0])
    with app.app_context():
        tenancy.enter_agency(owner.agency_id)
        account = db.session.get(SocialAccount, account_id)
        # Two deliveries meeting the same dead token, say.
        assert account_health.mark_needs_reconnect(account, "401 from the network")
        assert not account_health.mark_needs_reconnect(account, "401 again")
        db.session.commit()
        assert account.health == "needs_reconnect" and account.last_error == "401 again"
    run_webhook_jobs(app)
    [request] = receiver.hits(HOOK)
    assert json.loads(request.body)["type"] == "account.needs_reconnect"


# -- retries ------------------------------------------------------------------------------------


def test_the_retry_schedule_backs_off_exponentially_with_jitter_over_about_a_day(app):
    with app.app_context():
        bounds = webhook_schedule.schedule_bounds()
        assert len(bounds) == app.config["WEBHOOK_MAX_ATTEMPTS"] - 1 == 8
        expected = [60, 180, 540, 1620, 4860, 14580, 36000, 36000]
        for (low, high), middle in zip(bounds, expected, strict=True):
            assert low == pytest.approx(middle * 0.8) and high == pytest.approx(middle * 1.2)
        shortest = sum(low for low, _ in bounds)
        longest = sum(high for _, high in bounds)
        assert 18 * 3600 < shortest < longest < 32 * 3600  # about a day

        for attempt, ((low, high), _) in enumerate(zip(bounds, expected, strict=True), start=1):
            drawn = [webhook_schedule.retry_delay(attempt).total_seconds() for _ in range(50)]
            assert all(low <= d <= high for d in drawn)
            assert len(set(drawn)) > 1  # jitter: one outage's deliveries do not return together

        # A longer Retry-After is honoured, up to the cap; a shorter one changes nothing.
        assert webhook_schedule.retry_delay(1, retry_after=600).total_seconds() == 600
        assert webhook_schedule.retry_delay(1, retry_after=10**9).total_seconds() == 36000
        assert webhook_schedule.retry_delay(2, retry_after=1).total_seconds() >= 144
        # Many attempts configured: the cap, never an overflow.
        assert webhook_schedule.retry_delay(500).total_seconds() <= 36000 * 1.2


def test_a_failed_attempt_is_tried_again_when_due(app, client, make_agency, receiver, database):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    receiver.fail_next(HOOK, 503, {"error": "maintenance"}, **{"Retry-After": "120"})
    event_id = emit(app, owner.agency_id)
    before = utcnow()
    run_webhook_jobs(app)

    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 503
    assert "maintenance" in delivery["last_error"]
    wait = (
        _instant(delivery["next_attempt_at"]) - _instant(delivery["last_attempt_at"])
    ).total_seconds()
    assert wait == pytest.approx(120, abs=1)  # Retry-After (120 s) beats 60 s ± 20 %
    assert _instant(delivery["next_attempt_at"]) > before
    failing = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=owner.headers)
    assert failing.get_json()["failing_since"] is not None

    with app.app_context():
        assert webhook_schedule.enqueue_due() == 0  # not due yet
    shift_due(database, id=delivery["id"])
    with app.app_context():
        assert webhook_schedule.enqueue_due() == 1
        assert webhook_schedule.enqueue_due() == 0  # on the queue already
    run_webhook_jobs(app)

    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 2
    assert delivery["last_error"] is None
    first, second = receiver.hits(HOOK)
    # The same message both times: one webhook-id, a fresh timestamp and signature each.
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    assert first.body == second.body
    verified(second, endpoint["secret"])
    healthy = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=owner.headers)
    assert healthy.get_json()["failing_since"] is None


def _instant(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


def test_losing_redis_loses_no_delivery(app, client, make_agency, receiver):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    emit(app, owner.agency_id)
    with app.app_context():
        queue.queue(queue.WEBHOOKS).empty()  # Redis lost the job
        # Just enqueued: the sweep leaves it to its job for a while...
        assert webhook_schedule.enqueue_due() == 0
        # ...then takes it as lost.
        later = utcnow() + webhook_schedule.REENQUEUE_AFTER + timedelta(seconds=1)
        assert webhook_schedule.enqueue_due(now=later) == 1
    run_webhook_jobs(app)
    assert len(receiver.hits(HOOK)) == 1
    assert deliveries_of(client, owner, endpoint["id"])[0]["status"] == "succeeded"


def test_a_delivery_left_by_a_dead_worker_is_sent_again(
    app, client, make_agency, receiver, database
):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    emit(app, owner.agency_id)
    long_ago = utcnow() - timedelta(hours=1)
    table = WebhookDelivery.__table__
    with owner_connection(database) as connection:  # claimed an hour ago, never finished
        connection.execute(
            update(table).values(
                status="sending", attempts=1, claimed_at=long_ago, enqueued_at=long_ago
            )
        )
    with app.app_context():
        queue.queue(queue.WEBHOOKS).empty()
        assert webhook_schedule.enqueue_due() == 1
    run_webhook_jobs(app)
    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 2


def test_only_2xx_counts_and_redirects_are_not_followed(app, client, make_agency, receiver):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    receiver.route("POST", "/elsewhere")(lambda request: Response(200))
    receiver.fail_next(HOOK, 302, None, Location=receiver.url + "/elsewhere")
    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 302
    assert "not followed" in delivery["last_error"]
    assert receiver.hits("/elsewhere") == []


def _failures(reason: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "relais_webhook_delivery_failures_total", {"reason": reason}
        )
        or 0.0
    )


def test_each_failed_attempt_is_counted_by_reason(app, client, make_agency, receiver, database):
    owner = make_agency(brands=1)
    create_endpoint(client, owner, receiver.url + HOOK)
    reasons = ("http_5xx", "http_4xx", "gone", "blocked")
    before = {reason: _failures(reason) for reason in reasons}
    receiver.fail_next(HOOK, 503)
    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    receiver.fail_next(HOOK, 404)
    shift_due(database)
    with app.app_context():
        webhook_schedule.enqueue_due()
    run_webhook_jobs(app)  # the retry, refused too
    blocked = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    table = WebhookEndpoint.__table__
    with owner_connection(database) as connection:  # a target the guard refuses now
        connection.execute(
            update(table).where(table.c.id == blocked["id"]).values(url="http://10.9.8.7/h")
        )
    receiver.fail_next(HOOK, 410)
    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    grown = {reason: _failures(reason) - before[reason] for reason in reasons}
    assert grown == {"http_5xx": 1, "http_4xx": 1, "gone": 1, "blocked": 1}


def test_a_long_answer_is_not_read_beyond_a_small_cap(app, client, make_agency, receiver):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    receiver.fail_next(HOOK, 500, b"x" * 2_000_000)
    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["last_status_code"] == 500
    assert len(delivery["last_error"]) < 400


def test_an_endpoint_that_does_not_answer_in_time_is_a_failed_attempt(
    app_config, client, make_agency, receiver
):
    impatient = create_app({**app_config, "WEBHOOK_TIMEOUT_SECONDS": 0.3})
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    receiver.delay_next(HOOK, 1.5)
    emit(impatient, owner.agency_id)
    run_webhook_jobs(impatient)
    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert "No answer within 0.3 s" in delivery["last_error"]


def test_the_outbound_guard_is_asked_again_at_each_attempt(app, client, make_agency, database):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    table = WebhookEndpoint.__table__
    with owner_connection(database) as connection:  # a URL that would not pass creation now
        connection.execute(
            update(table).where(table.c.id == endpoint["id"]).values(url="http://10.9.8.7/h")
        )
    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert delivery["last_error"].startswith("Refused by the outbound guard")


# -- disabling ----------------------------------------------------------------------------------


def test_410_gone_disables_the_endpoint_and_tells_the_owner(app, client, make_agency, receiver):
    owner = make_agency("Gone Agency", brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    receiver.fail_next(HOOK, 410)
    emit(app, owner.agency_id)
    waiting = emit(app, owner.agency_id, "post.approved")  # queued behind the first
    etag = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=owner.headers)
    run_webhook_jobs(app)

    read = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=owner.headers)
    body = read.get_json()
    assert body["enabled"] is False and body["disabled_reason"] == "gone"
    assert read.headers["ETag"] != etag.headers["ETag"]
    log = {d["event_id"]: d for d in deliveries_of(client, owner, endpoint["id"])}
    assert [d["status"] for d in log.values()] == ["failed", "cancelled"]
    assert log[waiting]["attempts"] == 0
    assert len(receiver.hits(HOOK)) == 1
    [mail] = webhook_mails(app, owner.email)
    assert mail["Subject"].startswith("A webhook endpoint of Gone Agency")
    assert endpoint["id"] in text_of(mail) and "410 Gone" in text_of(mail)
    # Nothing more is sent, nor tested, until someone enables it again.
    assert emit(app, owner.agency_id) is None
    assert_problem(
        client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=owner.headers), 409
    )
    enabled = client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=owner.headers
    ).get_json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None
    assert emit(app, owner.agency_id) is not None


def test_an_endpoint_failing_for_days_is_disabled_when_a_delivery_gives_up(
    app_config, client, make_agency, receiver, database
):
    strict = create_app({**app_config, "WEBHOOK_MAX_ATTEMPTS": 2})
    owner = make_agency("Failing Agency", brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    receiver.route("POST", HOOK)(lambda request: Response(500, {"error": "down"}))

    def exhaust_one_delivery() -> None:
        emit(strict, owner.agency_id)
        run_webhook_jobs(strict)
        shift_due(database, endpoint_id=endpoint["id"])
        with strict.app_context():
            webhook_schedule.enqueue_due()
        run_webhook_jobs(strict)

    # All attempts of a delivery failed, but the endpoint has been failing for minutes only.
    exhaust_one_delivery()
    read = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=owner.headers).get_json()
    assert read["enabled"] is True and read["failing_since"] is not None
    assert [d["status"] for d in deliveries_of(client, owner, endpoint["id"])] == ["failed"]

    # Failing for longer than WEBHOOK_DISABLE_AFTER_SECONDS: the next delivery that gives up
    # disables it.
    table = WebhookEndpoint.__table__
    with owner_connection(database) as connection:
        connection.execute(
            update(table)
            .where(table.c.id == endpoint["id"])
            .values(failing_since=utcnow() - timedelta(days=4))
        )
    exhaust_one_delivery()
    read = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=owner.headers).get_json()
    assert read["enabled"] is False and read["disabled_reason"] == "failing"
    mails = webhook_mails(strict, owner.email)
    assert len(mails) == 1 and "has not accepted any event since" in text_of(mails[0])


def test_disabling_by_hand_cancels_what_was_pending(app, client, make_agency):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    emit(app, owner.agency_id)
    off = client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=owner.headers
    )
    assert off.get_json()["disabled_reason"] == "manual"
    [delivery] = deliveries_of(client, owner, endpoint["id"])
    assert delivery["status"] == "cancelled"
    run_webhook_jobs(app)  # the job enqueued before finds nothing to send
    assert deliveries_of(client, owner, endpoint["id"])[0]["attempts"] == 0


# -- redelivery, test events, rotation ------------------------------------------------------------


def test_redelivery_on_demand(app, client, make_agency, receiver):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    other = create_endpoint(client, owner, "http://127.0.0.1:9/other", enabled=False)
    event_id = emit(app, owner.agency_id)
    base = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    [first] = deliveries_of(client, owner, endpoint["id"])
    # Still being attempted: no second copy.
    assert_problem(client.post(f"{base}/{first['id']}/redeliver", headers=owner.headers), 409)
    run_webhook_jobs(app)

    again = client.post(f"{base}/{first['id']}/redeliver", headers=owner.headers)
    assert again.status_code == 202, again.get_json()
    assert again.get_json()["redelivery_of"] == first["id"]
    assert again.get_json()["status"] == "pending"
    run_webhook_jobs(app)
    one, two = receiver.hits(HOOK)
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == event_id
    verified(two, endpoint["secret"])
    assert [d["status"] for d in deliveries_of(client, owner, endpoint["id"])] == [
        "succeeded",
        "succeeded",
    ]
    assert deliveries_of(client, owner, endpoint["id"], status="pending") == []
    # A delivery is redelivered under its own endpoint only.
    elsewhere = f"/v1/webhook-endpoints/{other['id']}/deliveries/{first['id']}/redeliver"
    assert_problem(client.post(elsewhere, headers=owner.headers), 404)


def test_a_test_event_goes_to_that_endpoint_only(app, client, make_agency, receiver):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK, events=["post.failed"])
    bystander = create_endpoint(client, owner, "http://127.0.0.1:9/by")
    sent = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=owner.headers)
    assert sent.status_code == 202, sent.get_json()
    assert sent.get_json()["event_type"] == "webhook.test"
    run_webhook_jobs(app)
    [request] = receiver.hits(HOOK)
    body = verified(request, endpoint["secret"])
    assert body["type"] == "webhook.test" and body["brand_id"] is None
    assert body["data"]["endpoint_id"] == endpoint["id"]
    assert deliveries_of(client, owner, bystander["id"]) == []
    assert deliveries_of(client, owner, endpoint["id"])[0]["status"] == "succeeded"


def test_rotation_signs_with_both_secrets_during_the_overlap_only(
    app, client, make_agency, receiver, database
):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    old = endpoint["secret"]
    url = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    rotated = client.post(url, json={"overlap_seconds": 3600}, headers=owner.headers)
    assert rotated.status_code == 200, rotated.get_json()
    new = rotated.get_json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated.get_json()["previous_secret_expires_at"] is not None

    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    [during] = receiver.hits(HOOK)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(during, old)  # receivers not switched yet still verify
    verified(during, new)  # and those switched already too

    table = WebhookEndpoint.__table__
    with owner_connection(database) as connection:  # the overlap is over
        connection.execute(
            update(table)
            .where(table.c.id == endpoint["id"])
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )
    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    after = receiver.hits(HOOK)[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(after, new)
    with pytest.raises(WebhookVerificationError):
        verified(after, old)

    # No overlap asked: the old secret stops at once.
    newest = client.post(url, json={"overlap_seconds": 0}, headers=owner.headers).get_json()
    assert newest["previous_secret_expires_at"] is None
    emit(app, owner.agency_id)
    run_webhook_jobs(app)
    last = receiver.hits(HOOK)[-1]
    verified(last, newest["secret"])
    with pytest.raises(WebhookVerificationError):
        verified(last, new)
    # The default overlap (WEBHOOK_SECRET_OVERLAP_SECONDS, a day).
    default = client.post(url, json={}, headers=owner.headers).get_json()
    expires = _instant(default["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - utcnow() <= timedelta(hours=24)


# -- tenancy ------------------------------------------------------------------------------------


def test_a_job_handed_another_agencys_id_touches_nothing(app, client, make_agency, database):
    owner = make_agency(brands=1)
    stranger = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    emit(app, owner.agency_id)
    [delivery] = deliveries_of(client, owner, endpoint["id"])
    with owner_connection(database) as connection:
        before = connection.execute(select(WebhookDelivery.__table__)).all()
    with app.app_context():
        assert webhook_delivery.deliver(stranger.agency_id, delivery["id"]) == "skipped"
    with owner_connection(database) as connection:
        assert connection.execute(select(WebhookDelivery.__table__)).all() == before
    # And over the API, another agency's endpoint and delivery are 404 on every verb.
    base = f"/v1/webhook-endpoints/{endpoint['id']}"
    for method, path in (
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("POST", f"{base}/test"),
        ("POST", f"{base}/rotate-secret"),
        ("GET", f"{base}/deliveries"),
        ("POST", f"{base}/deliveries/{delivery['id']}/redeliver"),
    ):
        body = (
            {} if method in ("PATCH", "POST") and not path.endswith(("test", "redeliver")) else None
        )
        response = client.open(path, method=method, json=body, headers=stranger.headers)
        assert_problem(response, 404)


def test_old_events_and_their_logs_are_purged(app, client, make_agency, database):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    emit(app, owner.agency_id)
    with app.app_context():
        later = utcnow() + timedelta(days=31)
        # Still being attempted: kept, however old.
        assert webhook_schedule.purge_old(now=later) == 0
    client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=owner.headers
    )
    with app.app_context():
        assert webhook_schedule.purge_old() == 0  # recent
        assert webhook_schedule.purge_old(now=later) == 1
    assert deliveries_of(client, owner, endpoint["id"]) == []
    with owner_connection(database) as connection:
        assert connection.execute(select(WebhookEvent.__table__)).all() == []


def test_secrets_are_read_back_with_the_credentials_keys(app, client, make_agency, database):
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, "http://127.0.0.1:9/h")
    with app.app_context():
        stored = endpoint_row(database, endpoint["id"]).secrets_encrypted
        assert crypto.decrypt(stored) == {"current": endpoint["secret"], "previous": None}


def test_rotate_keys_re_encrypts_signing_secrets(app_config, client, make_agency, receiver):
    from cryptography.fernet import Fernet

    old_key = app_config["CREDENTIALS_ENCRYPTION_KEYS"][0]
    new_key = Fernet.generate_key().decode()
    owner = make_agency(brands=1)
    endpoint = create_endpoint(client, owner, receiver.url + HOOK)
    rotating = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [new_key, old_key]})
    result = rotating.test_cli_runner().invoke(args=["accounts", "rotate-keys"])
    assert "webhook_endpoints: 1" in result.output, result.output
    # Only the new key left: the endpoint's messages are still signed with its secret.
    rotated = create_app({**app_config, "CREDENTIALS_ENCRYPTION_KEYS": [new_key]})
    emit(rotated, owner.agency_id)
    run_webhook_jobs(rotated)
    [request] = receiver.hits(HOOK)
    verified(request, endpoint["secret"])


def test_a_replayed_create_shows_the_secret_again_without_storing_it_in_clear(
    client, make_agency, database
):
    owner = make_agency(brands=0)
    headers = {**owner.headers, "Idempotency-Key": "hook-1"}
    body = {"url": "http://127.0.0.1:9/h"}
    first = client.post("/v1/webhook-endpoints", json=body, headers=headers)
    again = client.post("/v1/webhook-endpoints", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    secret = first.get_json()["secret"]
    with owner_connection(database) as connection:
        for table in ("webhook_endpoints", "idempotency_records", "audit_events"):
            for row in connection.execute(select(WebhookEndpoint.metadata.tables[table])):
                assert secret not in repr(tuple(row)), table


def test_emit_knows_only_the_documented_event_types(app, make_agency):
    owner = make_agency(brands=0)
    with app.app_context():
        tenancy.enter_agency(owner.agency_id)
        with pytest.raises(ValueError, match="unknown webhook event type"):
            webhooks.emit("post.exploded", agency_id=owner.agency_id, brand_id=None, data={})
