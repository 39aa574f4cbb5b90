"""The publishing pipeline end to end, in process: posts scheduled through the API, the
dispatcher and the publish jobs run by an RQ SimpleWorker on the test Redis, a fake Mastodon
instance (tests/fakes/mastodon.py) as the network. Each fault takes its own path: a 500 and a
timeout before sending are retried, a 429 holds its account only, a timeout after sending goes
to the reconciler, a 401 marks the account, a cancelled post never goes out, and Redis losing
its jobs loses no post.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from app import tenancy
from app.extensions import db, redis
from app.models import Delivery, SocialAccount
from app.models.base import utcnow
from app.services import dispatcher, publishing
from tests.factories import in_tenant
from tests.fakes.mastodon import FakeMastodonNetwork
from tests.mail import read_mail
from tests.pipeline import connect_mastodon, deliveries_of, run_jobs, tick

STATUSES = FakeMastodonNetwork.create_path


@pytest.fixture
def fake():
    server = FakeMastodonNetwork().start()
    server.latency = 0
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _quick_pipeline(app, monkeypatch):
    """Retries and reconciliations due at once (their delays are tested apart), and empty
    queues around each test."""
    monkeypatch.setitem(app.config, "PUBLISH_RETRY_BASE_SECONDS", 0)
    monkeypatch.setitem(app.config, "PUBLISH_RECONCILE_DELAY_SECONDS", 0)
    with app.app_context():
        redis.client.flushdb()
    yield
    with app.app_context():
        redis.client.flushdb()


@pytest.fixture
def brand(make_agency):
    owner = make_agency("Publisher", brands=1, approval_mode="none")
    return owner, owner.brands[0]


def _post(client, owner, brand_id, account_ids, text="Hello from the pipeline"):
    made = client.post(
        f"/v1/brands/{brand_id}/posts",
        json={"text": text, "account_ids": account_ids},
        headers=owner.headers,
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]


def _act(client, owner, brand_id, post_id, action, **body):
    return client.post(
        f"/v1/brands/{brand_id}/posts/{post_id}/{action}", json=body, headers=owner.headers
    )


def _publish_now(client, owner, brand_id, post_id):
    answer = _act(client, owner, brand_id, post_id, "publish-now")
    assert answer.status_code == 200, answer.get_json()


def _post_status(client, owner, brand_id, post_id) -> str:
    return client.get(f"/v1/brands/{brand_id}/posts/{post_id}", headers=owner.headers).get_json()[
        "status"
    ]


def _activity(client, owner, brand_id, post_id) -> list[str]:
    page = client.get(
        f"/v1/brands/{brand_id}/posts/{post_id}/activity?limit=100", headers=owner.headers
    ).get_json()
    return [event["action"] for event in page["items"]]


def _past_the_lease(app) -> datetime:
    """An instant when the lease of a delivery claimed now has run out."""
    config = app.config
    return utcnow() + timedelta(
        seconds=config["PUBLISH_LEASE_SECONDS"] + config["PUBLISH_LOOKAHEAD_SECONDS"] + 1
    )


def _rows(app, agency_id, post_id) -> list[Delivery]:
    with in_tenant(app, agency_id) as session:
        rows = session.scalars(tenancy.scoped_select(Delivery).where(Delivery.post_id == post_id))
        return list(rows)


# -- on time, once --------------------------------------------------------------------------------


def test_a_scheduled_post_is_published_once_when_due(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    due = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = _act(client, owner, brand_id, post_id, "schedule", at=due.isoformat())
    assert scheduled.status_code == 200, scheduled.get_json()

    tick(app)  # due in two seconds: beyond the lookahead, nothing is claimed yet
    assert fake.posts_made == 0
    assert [d["status"] for d in deliveries_of(client, owner, brand_id, post_id)] == ["scheduled"]
    for _ in range(20):  # the cron's ticks, one every half second here
        if fake.posts_made:
            break
        time.sleep(0.5)
        tick(app)
    assert fake.posts_made == 1
    [status] = fake.statuses_of("alice")
    assert status["_text"] == "Hello from the pipeline"
    assert fake.hits(STATUSES)[0].headers["idempotency-key"]  # the delivery's id

    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published"
    assert delivery["external_id"] == status["id"]
    assert delivery["external_url"] == status["url"]
    assert delivery["attempts"] == 1 and delivery["next_attempt_at"] is None
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["published"]
    # Never before its time.
    assert datetime.fromisoformat(delivery["published_at"]) >= due
    assert _post_status(client, owner, brand_id, post_id) == "published"
    actions = _activity(client, owner, brand_id, post_id)
    assert "delivery.published" in actions and "post.published" in actions

    for _ in range(3):  # later runs find nothing to do
        tick(app)
    assert fake.posts_made == 1


def _metric(client, line_start: str) -> float:
    """The value of the first /metrics sample whose line starts with `line_start`."""
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_publish_now_goes_out_at_the_next_tick_and_is_counted(app, client, brand, fake):
    owner, brand_id = brand
    published = 'relais_deliveries_total{network="mastodon",outcome="published"}'
    lateness = 'relais_publish_lateness_seconds_count{network="mastodon"}'
    before = _metric(client, published), _metric(client, lateness)
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    tick(app)
    assert fake.posts_made == 1
    assert _post_status(client, owner, brand_id, post_id) == "published"
    assert (_metric(client, published), _metric(client, lateness)) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_two_accounts_one_refused_roll_up_to_partially_published(app, client, brand, fake):
    owner, brand_id = brand
    accounts = [connect_mastodon(client, owner, brand_id, fake, u) for u in ("alice", "bob")]
    post_id = _post(client, owner, brand_id, accounts)
    _publish_now(client, owner, brand_id, post_id)
    fake.reject_next(STATUSES, "Validation failed: Text character limit of 500 exceeded")
    tick(app)
    by_status = {d["status"]: d for d in deliveries_of(client, owner, brand_id, post_id)}
    assert set(by_status) == {"published", "failed"}
    failed = by_status["failed"]
    assert failed["last_error"] == "Validation failed: Text character limit of 500 exceeded"
    assert failed["last_error_kind"] == "rejected" and failed["last_status_code"] == 422
    assert _post_status(client, owner, brand_id, post_id) == "partially_published"
    actions = _activity(client, owner, brand_id, post_id)
    assert "delivery.failed" in actions and "post.partially_published" in actions
    assert fake.posts_made == 1


# -- faults, each on its own path ----------------------------------------------------------------


def test_a_500_is_retried_and_published_once(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    fake.error_next(STATUSES, 500)
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "scheduled"
    assert (delivery["last_error_kind"], delivery["last_status_code"]) == ("transient", 500)
    assert delivery["next_attempt_at"] is not None and delivery["attempts"] == 1
    assert _post_status(client, owner, brand_id, post_id) == "scheduled"
    assert fake.posts_made == 0

    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published" and delivery["attempts"] == 2
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["retry", "published"]
    assert delivery["attempt_log"][0]["status_code"] == 500
    assert fake.posts_made == 1
    # Both tries carried the same key: the network would have deduplicated a second post.
    keys = {r.headers["idempotency-key"] for r in fake.hits(STATUSES)}
    assert keys == {delivery["id"]}


def test_a_timeout_before_sending_is_retried(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    fake.refuse_connections()
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert (delivery["status"], delivery["last_error_kind"]) == ("scheduled", "transient")
    fake.accept_connections()
    tick(app)
    assert [d["status"] for d in deliveries_of(client, owner, brand_id, post_id)] == ["published"]
    assert fake.posts_made == 1


def test_a_429_honours_retry_after_and_holds_only_that_account(
    app, client, brand, fake, make_agency
):
    owner, brand_id = brand
    throttled = connect_mastodon(client, owner, brand_id, fake, "alice")
    first = _post(client, owner, brand_id, [throttled])
    _publish_now(client, owner, brand_id, first)
    fake.throttle_next(STATUSES, 120)
    before = utcnow()
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, first)
    assert (delivery["status"], delivery["last_error_kind"]) == ("scheduled", "rate_limited")
    assert delivery["last_status_code"] == 429
    retry_at = datetime.fromisoformat(delivery["next_attempt_at"])
    assert retry_at >= before + timedelta(seconds=120)

    # The account's next post waits as well; another brand's account carries on.
    second = _post(client, owner, brand_id, [throttled])
    _publish_now(client, owner, brand_id, second)
    other = make_agency("Other", brands=1, approval_mode="none")
    elsewhere = connect_mastodon(client, other, other.brands[0], fake, "bob")
    theirs = _post(client, other, other.brands[0], [elsewhere])
    _publish_now(client, other, other.brands[0], theirs)
    tick(app)
    assert _post_status(client, other, other.brands[0], theirs) == "published"
    [waiting] = deliveries_of(client, owner, brand_id, second)
    assert waiting["status"] == "scheduled" and waiting["attempts"] == 0
    assert datetime.fromisoformat(waiting["next_attempt_at"]) >= before + timedelta(seconds=120)
    assert [s["_user"] for s in fake.statuses.values()] == ["bob"]


def test_a_timeout_after_sending_is_reconciled_not_sent_again(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    app.config["NETWORK_HTTP_TIMEOUT_SECONDS"], timeout = (
        0.3,
        app.config["NETWORK_HTTP_TIMEOUT_SECONDS"],
    )
    try:
        fake.answer_late_next(STATUSES, 1.0)  # the post is made; the answer comes too late
        with app.app_context():
            dispatcher.dispatch()
        run_jobs(app)
    finally:
        app.config["NETWORK_HTTP_TIMEOUT_SECONDS"] = timeout
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert (delivery["status"], delivery["last_error_kind"]) == ("unknown", "unknown")
    assert _post_status(client, owner, brand_id, post_id) == "unknown"
    assert fake.posts_made == 1

    tick(app)  # the reconciler asks the instance, and finds the post
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published"
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["unknown", "found"]
    assert [a["action"] for a in delivery["attempt_log"]] == ["publish", "reconcile"]
    assert delivery["external_id"] == next(iter(fake.statuses))
    assert fake.posts_made == 1
    assert _post_status(client, owner, brand_id, post_id) == "published"


def test_credentials_refused_mark_the_account_and_tell_the_agency_once(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    posts = [_post(client, owner, brand_id, [account], text=f"Post {i}") for i in range(2)]
    fake.access_tokens.clear()  # the person revoked Relais's access at the instance
    for post_id in posts:
        _publish_now(client, owner, brand_id, post_id)
    tick(app)
    for post_id in posts:
        [delivery] = deliveries_of(client, owner, brand_id, post_id)
        assert (delivery["status"], delivery["last_error_kind"]) == ("failed", "credentials")
        assert _post_status(client, owner, brand_id, post_id) == "failed"
    shown = client.get(f"/v1/brands/{brand_id}/accounts/{account}", headers=owner.headers)
    assert shown.get_json()["health"] == "needs_reconnect"
    events = client.get(
        "/v1/audit-events?action=social_account.needs_reconnect", headers=owner.headers
    ).get_json()["items"]
    assert len(events) == 1
    mail = read_mail(app, owner.email)
    assert [m["Subject"] for m in mail if "Reconnect" in m["Subject"]] == [
        "Reconnect @alice@127.0.0.1 on Mastodon: its posts cannot go out"
    ]
    # One request reached the network: the second delivery failed without one.
    assert len(fake.hits(STATUSES)) == 1
    assert fake.posts_made == 0


# -- cancelled, lost, doubled ----------------------------------------------------------------------


def test_a_post_cancelled_after_its_claim_never_goes_out(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    with app.app_context():
        assert dispatcher.dispatch()["claimed"] == 1  # its job waits in Redis
    assert _act(client, owner, brand_id, post_id, "cancel").status_code == 200
    run_jobs(app)
    tick(app)
    assert fake.posts_made == 0 and fake.hits(STATUSES) == []
    assert [d["status"] for d in deliveries_of(client, owner, brand_id, post_id)] == ["cancelled"]
    assert _metric(client, 'relais_deliveries_total{network="mastodon",outcome="cancelled"}') >= 1
    assert _post_status(client, owner, brand_id, post_id) == "cancelled"


def test_a_post_cannot_be_cancelled_once_a_job_took_it(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    fake.delay_next(STATUSES, 1.0)
    answers = []

    def cancel_while_sending() -> None:
        for _ in range(200):  # until the job has taken the delivery and called the network
            if fake.hits(STATUSES):
                break
            time.sleep(0.01)
        answers.append(_act(client, owner, brand_id, post_id, "cancel"))

    person = threading.Thread(target=cancel_while_sending)
    person.start()
    tick(app)
    person.join()
    [refused] = answers
    assert refused.status_code == 409
    assert fake.posts_made == 1
    assert _post_status(client, owner, brand_id, post_id) == "published"


def test_redis_losing_every_job_loses_no_post(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    with app.app_context():
        assert dispatcher.dispatch()["claimed"] == 1
        redis.client.flushdb()  # the claimed delivery's job is gone
    run_jobs(app)
    assert fake.posts_made == 0
    later = _past_the_lease(app)
    with app.app_context():
        assert dispatcher.dispatch(now=later)["enqueued_again"] == 1
    run_jobs(app)
    assert fake.posts_made == 1
    with app.app_context():  # a lease past again finds nothing to redo
        assert dispatcher.dispatch(now=later + timedelta(minutes=5)) == {
            "claimed": 0,
            "enqueued_again": 0,
            "reconciling": 0,
        }


def test_a_job_still_waiting_in_redis_is_not_enqueued_twice(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    later = _past_the_lease(app)
    with app.app_context():
        dispatcher.dispatch()
        assert dispatcher.dispatch(now=later)["enqueued_again"] == 0
        [delivery] = _rows(app, owner.agency_id, post_id)
        job = Job.fetch(
            dispatcher.publish_job_id(delivery.id, 1),
            connection=redis.client,
            serializer=JSONSerializer,
        )
        # The job's own args: ids only. Its time limit leaves room for a video's processing.
        assert job.args == [delivery.id, owner.agency_id]
        assert job.timeout == dispatcher.JOB_TIMEOUT_SECONDS
    run_jobs(app)
    assert fake.posts_made == 1


def test_two_dispatchers_at_once_claim_each_delivery_once(app, client, brand, fake):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    posts = [_post(client, owner, brand_id, [account], text=f"Post {i}") for i in range(12)]
    for post_id in posts:
        _publish_now(client, owner, brand_id, post_id)
    app.config["PUBLISH_CLAIM_BATCH"], batch = 5, app.config["PUBLISH_CLAIM_BATCH"]
    claimed: list[int] = []
    start = threading.Barrier(2)

    def dispatcher_process() -> None:
        with app.app_context():
            start.wait()
            for _ in range(4):
                claimed.append(dispatcher.dispatch()["claimed"])

    try:
        threads = [threading.Thread(target=dispatcher_process) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        app.config["PUBLISH_CLAIM_BATCH"] = batch
    assert sum(claimed) == 12
    run_jobs(app)
    assert fake.posts_made == 12
    assert sorted(s["_text"] for s in fake.statuses.values()) == sorted(
        f"Post {i}" for i in range(12)
    )


def test_a_worker_dying_mid_publish_is_reconciled(app, client, brand, fake, monkeypatch):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)

    class Killed(BaseException):
        """What SIGKILL leaves: the process gone between the network's yes and our commit."""

    from app.networks.mastodon import MastodonConnector

    real_publish = MastodonConnector.publish

    def publish_then_die(self, account, request):
        real_publish(self, account, request)
        raise Killed

    monkeypatch.setattr(MastodonConnector, "publish", publish_then_die)
    with app.app_context():
        dispatcher.dispatch()
    run_jobs(app)  # RQ records the job as failed, as a worker does when its horse is killed
    monkeypatch.setattr(MastodonConnector, "publish", real_publish)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "publishing"
    assert fake.posts_made == 1

    later = _past_the_lease(app)
    with app.app_context():
        assert dispatcher.dispatch(now=later)["reconciling"] == 1
    run_jobs(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published"
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["found"]
    assert fake.posts_made == 1
    actions = _activity(client, owner, brand_id, post_id)
    assert "delivery.unknown" in actions and actions[-1] == "post.published"


def test_a_long_publish_keeps_its_lease(app, client, brand, fake, monkeypatch):
    """A network call longer than the lease (a video processed for minutes, say) renews it:
    the dispatcher does not take the delivery for a dead worker's."""
    owner, brand_id = brand
    monkeypatch.setitem(app.config, "PUBLISH_LEASE_SECONDS", 2)
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    fake.delay_next(STATUSES, 3.0)
    looked: list[dict[str, int]] = []

    def dispatcher_meanwhile() -> None:
        for _ in range(300):  # until the job has taken the delivery
            if deliveries_of(client, owner, brand_id, post_id)[0]["status"] == "publishing":
                break
            time.sleep(0.01)
        time.sleep(2.5)  # past the lease the job took, and still in its network call
        with app.app_context():
            looked.append(dispatcher.dispatch())

    cron = threading.Thread(target=dispatcher_meanwhile)
    cron.start()
    tick(app)
    cron.join()
    assert looked[0]["reconciling"] == 0
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published" and delivery["attempts"] == 1
    assert fake.posts_made == 1


def test_retries_stop_after_the_last_attempt(app, client, brand, fake, monkeypatch):
    owner, brand_id = brand
    monkeypatch.setitem(app.config, "PUBLISH_MAX_ATTEMPTS", 2)
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    for _ in range(2):
        fake.error_next(STATUSES, 503)
        tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "failed" and delivery["attempts"] == 2
    assert delivery["last_error"].startswith("Gave up after 2 attempts")
    assert _post_status(client, owner, brand_id, post_id) == "failed"
    tick(app)
    assert fake.posts_made == 0 and len(fake.hits(STATUSES)) == 2


# -- tenancy --------------------------------------------------------------------------------------


def test_a_job_handed_another_agencys_id_touches_nothing(app, client, brand, fake, make_agency):
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    post_id = _post(client, owner, brand_id, [account])
    _publish_now(client, owner, brand_id, post_id)
    stranger = make_agency("Stranger", brands=1)
    with app.app_context():
        dispatcher.dispatch()
        redis.client.flushdb()
    [delivery] = _rows(app, owner.agency_id, post_id)
    assert delivery.status == "queued"
    from workers.jobs.publishing import publish_delivery, reconcile_delivery

    with app.app_context():
        assert publish_delivery(delivery.id, stranger.agency_id) == "not_found"
        assert reconcile_delivery(delivery.id, stranger.agency_id) == "not_found"
        assert publishing.publish(delivery.id, "agy_01JD5ZQ7R9X4M2B8C6N3P1T0VW") == "not_found"
    [after] = _rows(app, owner.agency_id, post_id)
    assert (after.status, after.attempts, after.updated_at) == (
        "queued",
        0,
        delivery.updated_at,
    )
    assert fake.hits(STATUSES) == []
    with app.app_context():
        assert publish_delivery(delivery.id, owner.agency_id) == "published"


def test_the_account_row_is_read_in_its_tenant(app, client, brand, fake):
    """The job enters the agency it was handed before reading: on PostgreSQL, RLS hides the
    other agencies' accounts from it."""
    owner, brand_id = brand
    account = connect_mastodon(client, owner, brand_id, fake, "alice")
    with app.app_context():
        tenancy.enter_agency(owner.agency_id)
        row = db.session.scalars(
            tenancy.scoped_select(SocialAccount).where(SocialAccount.id == account)
        ).one()
        assert row.rate_limited_until is None


# -- deleting from the network -------------------------------------------------------------------


def _published_post(app, client, owner, brand_id, fake, users=("alice",)):
    accounts = [connect_mastodon(client, owner, brand_id, fake, u) for u in users]
    post_id = _post(client, owner, brand_id, accounts)
    _publish_now(client, owner, brand_id, post_id)
    tick(app)
    assert _post_status(client, owner, brand_id, post_id) == "published"
    return post_id, accounts


def test_a_published_post_is_deleted_from_the_network_on_request(app, client, brand, fake):
    owner, brand_id = brand
    post_id, _ = _published_post(app, client, owner, brand_id, fake, users=("alice", "bob"))
    answer = _act(client, owner, brand_id, post_id, "delete-from-network")
    assert answer.status_code == 202, answer.get_json()
    assert {d["status"] for d in deliveries_of(client, owner, brand_id, post_id)} == {"deleting"}
    run_jobs(app)
    assert {d["status"] for d in deliveries_of(client, owner, brand_id, post_id)} == {"deleted"}
    assert fake.statuses == {}
    # The post went out: that stays its status, and its activity says what happened since.
    assert _post_status(client, owner, brand_id, post_id) == "published"
    actions = _activity(client, owner, brand_id, post_id)
    assert actions.count("delivery.deleted_from_network") == 2
    assert "post.deletion_requested" in actions
    again = _act(client, owner, brand_id, post_id, "delete-from-network")
    assert again.status_code == 409


def test_deleting_from_one_account_only(app, client, brand, fake):
    owner, brand_id = brand
    post_id, accounts = _published_post(app, client, owner, brand_id, fake, users=("alice", "bob"))
    answer = _act(
        client, owner, brand_id, post_id, "delete-from-network", account_ids=[accounts[0]]
    )
    assert answer.status_code == 202, answer.get_json()
    run_jobs(app)
    statuses = {
        d["account_id"]: d["status"] for d in deliveries_of(client, owner, brand_id, post_id)
    }
    assert statuses == {accounts[0]: "deleted", accounts[1]: "published"}
    assert [s["_user"] for s in fake.statuses.values()] == ["bob"]
    unknown = _act(
        client,
        owner,
        brand_id,
        post_id,
        "delete-from-network",
        account_ids=["acc_01JD5ZQ7R9X4M2B8C6N3P1T0VW"],
    )
    assert unknown.status_code == 422


def test_a_refused_deletion_leaves_the_post_published_with_the_reason(app, client, brand, fake):
    owner, brand_id = brand
    post_id, _ = _published_post(app, client, owner, brand_id, fake)
    [status_id] = fake.statuses
    fake.fail_next(f"{STATUSES}/{status_id}", 403, {"error": "This action is not allowed"})
    assert _act(client, owner, brand_id, post_id, "delete-from-network").status_code == 202
    run_jobs(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published"
    assert "This action is not allowed" in delivery["last_error"]
    assert "delivery.deletion_failed" in _activity(client, owner, brand_id, post_id)
    assert list(fake.statuses) == [status_id]


def test_a_deletion_the_network_puts_off_is_tried_again(app, client, brand, fake):
    owner, brand_id = brand
    post_id, _ = _published_post(app, client, owner, brand_id, fake)
    [status_id] = fake.statuses
    fake.error_next(f"{STATUSES}/{status_id}", 503)
    assert _act(client, owner, brand_id, post_id, "delete-from-network").status_code == 202
    run_jobs(app)
    assert [d["status"] for d in deliveries_of(client, owner, brand_id, post_id)] == ["deleting"]
    with app.app_context():
        dispatcher.dispatch(now=utcnow() + timedelta(minutes=2))
    run_jobs(app)
    assert [d["status"] for d in deliveries_of(client, owner, brand_id, post_id)] == ["deleted"]
    assert fake.statuses == {}
