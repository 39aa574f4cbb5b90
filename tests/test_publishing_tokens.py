"""The publishing pipeline on a network with expiring tokens and no idempotency key (X, on
its fake, tests/fakes/x.py): an expired access token is refreshed once, stored, and the post
sent; a dead refresh token marks the account; a create whose answer is lost (X has no key to
deduplicate a retry by) is reconciled by looking for the tweet, never sent again blindly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app import tenancy
from app.extensions import db, redis
from app.models import SocialAccount
from app.models.base import utcnow
from app.security import crypto
from tests.fakes.x import FakeXNetwork
from tests.pipeline import deliveries_of, tick

TWEETS = FakeXNetwork.create_path


@pytest.fixture
def fake(app, monkeypatch):
    server = FakeXNetwork(app.config["X_CLIENT_ID"], app.config["X_CLIENT_SECRET"]).start()
    server.latency = 0
    monkeypatch.setitem(app.config, "X_API_URL", server.url)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _quick_pipeline(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLISH_RETRY_BASE_SECONDS", 0)
    monkeypatch.setitem(app.config, "PUBLISH_RECONCILE_DELAY_SECONDS", 0)
    with app.app_context():
        redis.client.flushdb()


def _x_account(app, factory, owner, brand_id, fake, *, expired: bool) -> str:
    issued = fake.issue("carol")
    with app.app_context():
        sealed = crypto.encrypt(
            {k: issued[k] for k in ("access_token", "refresh_token", "token_type")}
        )
    return factory.account(
        owner,
        brand_id,
        "x",
        external_id=fake.user_id("carol"),
        handle="@carol",
        credentials_encrypted=sealed,
        token_expires_at=utcnow() + (timedelta(minutes=-5) if expired else timedelta(hours=1)),
    )


def _publish_now(client, owner, brand_id, account_id, text="Tweeted by the pipeline") -> str:
    made = client.post(
        f"/v1/brands/{brand_id}/posts",
        json={"text": text, "account_ids": [account_id]},
        headers=owner.headers,
    )
    assert made.status_code == 201, made.get_json()
    post_id = made.get_json()["id"]
    answer = client.post(
        f"/v1/brands/{brand_id}/posts/{post_id}/publish-now", headers=owner.headers
    )
    assert answer.status_code == 200, answer.get_json()
    return post_id


def _stored(app, agency_id, account_id) -> SocialAccount:
    with app.app_context():
        tenancy.enter_agency(agency_id)
        return db.session.scalars(
            tenancy.scoped_select(SocialAccount).where(SocialAccount.id == account_id)
        ).one()


def test_an_expired_token_is_refreshed_stored_and_the_post_sent(
    app, client, make_agency, factory, fake
):
    owner = make_agency("Tweets", brands=1, approval_mode="none")
    brand_id = owner.brands[0]
    account = _x_account(app, factory, owner, brand_id, fake, expired=True)
    before = _stored(app, owner.agency_id, account)
    post_id = _publish_now(client, owner, brand_id, account)
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published", delivery
    assert fake.posts_made == 1
    after = _stored(app, owner.agency_id, account)
    assert after.token_expires_at > utcnow()
    assert after.credentials_encrypted != before.credentials_encrypted
    assert after.health == "active"


def test_a_dead_refresh_token_marks_the_account(app, client, make_agency, factory, fake):
    owner = make_agency("Tweets dead", brands=1, approval_mode="none")
    brand_id = owner.brands[0]
    account = _x_account(app, factory, owner, brand_id, fake, expired=True)
    fake.refresh_tokens.clear()  # revoked at X
    post_id = _publish_now(client, owner, brand_id, account)
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert (delivery["status"], delivery["last_error_kind"]) == ("failed", "credentials")
    assert _stored(app, owner.agency_id, account).health == "needs_reconnect"
    assert fake.posts_made == 0 and fake.hits(TWEETS) == []


def test_a_lost_answer_on_x_is_reconciled_not_sent_twice(app, client, make_agency, factory, fake):
    owner = make_agency("Tweets 500", brands=1, approval_mode="none")
    brand_id = owner.brands[0]
    account = _x_account(app, factory, owner, brand_id, fake, expired=False)
    post_id = _publish_now(client, owner, brand_id, account, text="Made despite the 500")
    # X made the tweet and its answer was lost: no key would stop a blind retry doubling it.
    fake.drop_next(TWEETS, after_handling=True)
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "unknown"
    tick(app)
    [delivery] = deliveries_of(client, owner, brand_id, post_id)
    assert delivery["status"] == "published"
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["unknown", "found"]
    assert fake.posts_made == 1 and len(fake.hits(TWEETS)) == 1
