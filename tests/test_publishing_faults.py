"""Single faults on the way to a network, with real processes: one `relais worker` and one
`relais cron` (tests/processes.py) on the test database and real Redis publish to a Mastodon
fake (tests/fakes/mastodon.py) and to the real Bluesky PDS behind a proxy that injects faults
(tests/fakes/proxy.py). Everything goes through the API: an account connected, a post
scheduled a few seconds ahead, its outcome read from `GET …/posts/{post_id}/deliveries`. Each
fault takes its own path, and the network holds the post once (or not at all, when refused):

- a 500: retried with the same idempotency key;
- a 429 with Retry-After: retried, not before the network said;
- a timeout before sending (connections refused): retried;
- a timeout after sending (the post made, the answer too late): `unknown`, then reconciled by
  asking the network, never posted again blindly;
- content the network refuses: failed at once, with the network's own message.

Without Node (or when the PDS cannot be installed) the Bluesky test is skipped, saying why.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.fakes.mastodon import FakeMastodonNetwork
from tests.fakes.proxy import FaultyProxy
from tests.peers.bluesky_pds import BlueskyPds
from tests.processes import RelaisProcesses, wait_until
from tests.publishing_api import (
    BLUESKY_CREATE,
    MASTODON_CREATE,
    NETWORK_TIMEOUT,
    SETTLE_SECONDS,
    assert_published_once_on_bluesky,
    assert_published_once_on_mastodon,
    attempt_path,
    bluesky_or_skip,
    new_brand,
    record_arrivals,
    soon,
    start_pds_or_none,
    start_processes,
)

pytestmark = pytest.mark.slow


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def processes(app_config, tmp_path_factory) -> Iterator[RelaisProcesses]:
    """One worker and one cron for the module: each test has its own brand and its own fake."""
    started = start_processes(app_config, tmp_path_factory.mktemp("processes"))
    yield started
    started.stop_all()


@pytest.fixture
def mastodon() -> Iterator[FakeMastodonNetwork]:
    fake = FakeMastodonNetwork().start()
    yield fake
    fake.stop()


def test_a_500_is_retried_with_the_same_key_and_publishes_once(
    client, make_agency, mastodon, processes
):
    brand = new_brand(client, make_agency)
    account = brand.connect_mastodon(mastodon)
    mastodon.error_next(MASTODON_CREATE, 500)
    post = brand.schedule("A 500 first, then fine", soon(3), [account])

    assert brand.wait_until_final(processes)[post] == "published"

    delivery = brand.delivery(post)
    assert attempt_path(delivery) == [("publish", "retry", 500), ("publish", "published", None)]
    assert delivery["attempts"] == 2
    first, second = mastodon.hits(MASTODON_CREATE)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert_published_once_on_mastodon(brand, mastodon, account)


def test_a_429_waits_for_retry_after_then_publishes_once(client, make_agency, mastodon, processes):
    brand = new_brand(client, make_agency)
    account = brand.connect_mastodon(mastodon)
    arrivals = record_arrivals(mastodon)
    retry_after = 4
    mastodon.throttle_next(MASTODON_CREATE, retry_after)
    post = brand.schedule("A 429 first, then fine", soon(3), [account])

    assert brand.wait_until_final(processes)[post] == "published"

    delivery = brand.delivery(post)
    assert attempt_path(delivery) == [("publish", "retry", 429), ("publish", "published", None)]
    throttled = delivery["attempt_log"][0]
    waited = _instant(throttled["retry_at"]) - _instant(throttled["finished_at"])
    assert waited.total_seconds() >= retry_after - 0.25, throttled
    first, second = [t for t, path in arrivals if path == MASTODON_CREATE]
    # Not a speed: the retry must not come before the network said it may.
    assert second - first >= retry_after - 0.25, second - first
    assert_published_once_on_mastodon(brand, mastodon, account)


def test_refused_connections_are_retried_and_publish_once(client, make_agency, mastodon, processes):
    brand = new_brand(client, make_agency)
    account = brand.connect_mastodon(mastodon)
    post = brand.schedule("Nobody home at first", soon(3), [account])
    mastodon.refuse_connections()
    try:
        # Nothing was sent, so nothing was created: the delivery waits for a retry.
        failed = wait_until(
            lambda: next(
                (d for d in [brand.delivery(post)] if d["attempts"] >= 1 and d["last_error"]),
                None,
            ),
            "a first attempt failing",
            SETTLE_SECONDS,
        )
        assert failed["status"] in ("scheduled", "queued"), failed
    finally:
        mastodon.accept_connections()

    assert brand.wait_until_final(processes)[post] == "published"
    delivery = brand.delivery(post)
    *refused, last = delivery["attempt_log"]
    assert refused and all(
        (a["action"], a["outcome"], a["error_kind"], a["status_code"])
        == ("publish", "retry", "transient", None)
        for a in refused
    ), refused
    assert (last["action"], last["outcome"]) == ("publish", "published")
    assert delivery["attempts"] == len(refused) + 1
    assert len(mastodon.hits(MASTODON_CREATE)) == 1
    assert_published_once_on_mastodon(brand, mastodon, account)


def test_an_answer_after_the_timeout_is_reconciled_not_posted_again(
    client, make_agency, mastodon, processes
):
    brand = new_brand(client, make_agency)
    account = brand.connect_mastodon(mastodon)
    arrivals = record_arrivals(mastodon)
    # The instance posts at once, and answers after the worker stopped listening.
    mastodon.answer_late_next(MASTODON_CREATE, NETWORK_TIMEOUT + 3)
    post = brand.schedule("Posted, but the answer came late", soon(3), [account])

    assert brand.wait_until_final(processes)[post] == "published"

    delivery = brand.delivery(post)
    assert attempt_path(delivery) == [("publish", "unknown", None), ("reconcile", "found", None)]
    [status_id] = mastodon.statuses
    assert delivery["external_id"] == status_id
    assert_published_once_on_mastodon(brand, mastodon, account)
    # The reconciler read the account's statuses before any second create.
    paths = [path for _, path in arrivals]
    creates = [i for i, path in enumerate(paths) if path == MASTODON_CREATE]
    lookups = [i for i, p in enumerate(paths) if p.startswith("/api/v1/accounts/")]
    assert lookups, paths
    assert len(creates) == 1 or lookups[0] < creates[1], paths


def test_content_the_instance_refuses_fails_at_once_with_its_message(
    client, make_agency, mastodon, processes
):
    brand = new_brand(client, make_agency)
    account = brand.connect_mastodon(mastodon)
    message = "Validation failed: Text contains a word this server does not allow"
    mastodon.reject_next(MASTODON_CREATE, message)
    post = brand.schedule("Something this server refuses", soon(3), [account])

    assert brand.wait_until_final(processes)[post] == "failed"

    delivery = brand.delivery(post)
    assert attempt_path(delivery) == [("publish", "failed", 422)]
    assert delivery["attempt_log"][0]["error_kind"] == delivery["last_error_kind"] == "rejected"
    assert message in (delivery["last_error"] or ""), delivery
    assert mastodon.posts_made == 0 and len(mastodon.hits(MASTODON_CREATE)) == 1


# -- the same on the real PDS, through a proxy that injects the faults in front of it ----------


@pytest.fixture(scope="module")
def pds() -> Iterator[BlueskyPds | None]:
    server = start_pds_or_none()
    yield server
    if server is not None:
        server.stop()


@pytest.fixture
def pds_proxy(pds) -> Iterator[tuple[BlueskyPds, FaultyProxy]]:
    server = bluesky_or_skip(pds)
    proxy = FaultyProxy(server.url).start()
    yield server, proxy
    proxy.stop()


def test_bluesky_500_is_retried_and_publishes_once(client, make_agency, pds_proxy, processes):
    pds, proxy = pds_proxy
    person = pds.create_account(f"f{uuid.uuid4().hex[:8]}")
    brand = new_brand(client, make_agency)
    account = brand.connect_bluesky(proxy.url, person)
    proxy.fail_next(BLUESKY_CREATE, 500, {"error": "InternalServerError", "message": "oops"})
    post = brand.schedule("Bluesky: a 500 first, then fine", soon(3), [account])

    assert brand.wait_until_final(processes)[post] == "published"

    path = attempt_path(brand.delivery(post))
    assert path == [("publish", "retry", 500), ("publish", "published", None)]
    first, second = (r.json for r in proxy.hits(BLUESKY_CREATE))
    assert first["rkey"] == second["rkey"]  # the record key the retry cannot post twice under
    assert_published_once_on_bluesky(brand, pds.url, person.did, account)


def test_bluesky_answer_after_the_timeout_is_reconciled_not_posted_again(
    client, make_agency, pds_proxy, processes
):
    pds, proxy = pds_proxy
    person = pds.create_account(f"f{uuid.uuid4().hex[:8]}")
    brand = new_brand(client, make_agency)
    account = brand.connect_bluesky(proxy.url, person)
    proxy.answer_late_next(BLUESKY_CREATE, NETWORK_TIMEOUT + 3)
    post = brand.schedule("Bluesky: posted, answered late", soon(3), [account])

    assert brand.wait_until_final(processes)[post] == "published"

    path = attempt_path(brand.delivery(post))
    assert path == [("publish", "unknown", None), ("reconcile", "found", None)]
    assert_published_once_on_bluesky(brand, pds.url, person.did, account)
