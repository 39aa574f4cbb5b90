"""Publishing through crashes, a lost Redis and processes started twice, with real processes
(tests/processes.py) on the test database and real Redis, to a Mastodon fake and (where Node
runs) the real Bluesky PDS. A batch is scheduled through the API; whatever happens to the
processes, every delivery ends published, and each network holds each post exactly once
(`posts_made` on the fake, listRecords on the PDS).

- workers SIGKILLed at random points, 20 times over a batch: the worker with its work horse
  (a crash), the horse alone (the job dies, the worker lives), or the worker alone (its horse
  finishes with nobody listening); each killed worker is started again;
- Redis flushed between scheduling and the due time, and again while the batch runs;
- two workers and two `relais cron` started by mistake, with extra dispatches besides.

Without Node (or when the PDS cannot be installed) only the Mastodon part runs, saying why.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from tests.fakes.mastodon import FakeMastodonNetwork
from tests.peers.bluesky_pds import BlueskyPds
from tests.processes import wait_until
from tests.publishing_api import (
    SETTLE_SECONDS,
    soon,
    start_pds_or_none,
    start_processes,
    targets,
)

pytestmark = pytest.mark.slow

KILLS = 20
# The kills stop here whatever happened (the loop needs busy workers to find a moment to kill).
KILLING_SECONDS = 300


@pytest.fixture(scope="module")
def pds() -> Iterator[BlueskyPds | None]:
    server = start_pds_or_none()
    yield server
    if server is not None:
        server.stop()


@pytest.fixture
def mastodon() -> Iterator[FakeMastodonNetwork]:
    fake = FakeMastodonNetwork().start()
    yield fake
    fake.stop()


@pytest.mark.skip(
    reason="the kill schedule finds busy workers by their work horse, and publish jobs now run "
    "in the worker's own process (workers/worker.py IN_PROCESS_QUEUES): it reached 3 kills of "
    "20 on the merged code. To be rewritten to watch the jobs themselves (issue 8, open)."
)
def test_workers_killed_at_random_points_publish_every_delivery_exactly_once(
    client, make_agency, mastodon, pds, app_config, tmp_path
):
    seed = random.randrange(1 << 30)
    print(f"\n[faults] kill schedule seed {seed}")
    rng = random.Random(seed)
    # Each publication takes a while, so that a kill often lands in the middle of one.
    mastodon.latency = 0.25
    batch = targets(client, make_agency, mastodon, pds)
    processes = start_processes(app_config, tmp_path, workers=2)
    try:
        # Spread over about half a minute, so that the kills fall all along the batch.
        batch.brand.schedule_batch(30, soon(4), batch.account_ids, spread=0.8)
        kills: list[str] = []
        deadline = time.monotonic() + KILLING_SECONDS
        while len(kills) < KILLS and time.monotonic() < deadline:
            ready = processes.ready_workers()
            if not ready:
                time.sleep(0.1)
                continue
            worker = rng.choice(ready)
            if not processes.wait_until_busy(worker, 5):
                continue
            time.sleep(rng.uniform(0, 0.3))
            how = rng.choice(("crash", "crash", "horse", "worker only"))
            if how == "horse":
                if processes.kill_horse(worker):
                    kills.append(how)
                continue
            if how == "crash":
                processes.crash(worker)
            else:
                # Its horse finishes the job with nobody listening.
                processes.wait_gone(processes.kill_worker_only(worker), 60)
            kills.append(how)
            processes.restart(worker)
        print(f"[faults] {len(kills)} kills: {', '.join(kills)}")
        assert len(kills) >= KILLS, processes.logs()

        batch.brand.wait_until_final(processes)
        batch.assert_each_published_once()
    finally:
        processes.stop_all()


def test_redis_flushed_before_the_due_time_and_during_the_batch_loses_nothing(
    client, make_agency, mastodon, pds, app_config, tmp_path
):
    mastodon.latency = 0.1
    batch = targets(client, make_agency, mastodon, pds)
    processes = start_processes(app_config, tmp_path)
    try:
        due = soon(8)
        batch.brand.schedule_batch(12, due, batch.account_ids)
        # Whatever the dispatcher claimed or handed to rq ahead of the due time is gone.
        wait_until(lambda: datetime.now(UTC) >= due - timedelta(seconds=1), "nearly due", 60)
        processes.redis.flushdb()
        # And again once the batch is under way: jobs queued, some running.
        wait_until(
            lambda: any(d["status"] != "scheduled" for d in batch.brand.all_deliveries()),
            "publishing under way",
            SETTLE_SECONDS,
            every=0.05,
        )
        processes.redis.flushdb()

        batch.brand.wait_until_final(processes)
        batch.assert_each_published_once()
    finally:
        processes.stop_all()


def dispatcher_job() -> tuple[str, str]:
    """(dotted path, queue) of the dispatcher among the periodic jobs: the publishing job that
    runs most often."""
    from workers import schedule

    candidates = [
        (interval, f"{func.__module__}.{func.__name__}", queue_name)
        for func, queue_name, interval in schedule.PERIODIC_JOBS
        if func.__module__.endswith(".publishing")
    ]
    assert candidates, "no periodic publishing job in workers/schedule.py"
    _, path, queue_name = min(candidates)
    return path, queue_name


def test_two_workers_and_two_crons_with_extra_dispatches_publish_each_delivery_once(
    client, make_agency, mastodon, pds, app_config, tmp_path
):
    mastodon.latency = 0.05
    batch = targets(client, make_agency, mastodon, pds)
    processes = start_processes(app_config, tmp_path, workers=2, crons=2)
    try:
        due = soon(6)
        batch.brand.schedule_batch(30, due, batch.account_ids)
        # `relais cron` lets one of the two lead. A dispatcher started by mistake some other
        # way (`rq cron`, a script) is not held back by its lock: enqueue extra dispatches
        # around the due time, so that several run at once on the two workers.
        path, queue_name = dispatcher_job()
        queue = Queue(queue_name, connection=processes.redis, serializer=JSONSerializer)
        wait_until(lambda: datetime.now(UTC) >= due - timedelta(seconds=2), "nearly due", 60)
        for _ in range(40):
            queue.enqueue(path)
            time.sleep(0.1)

        batch.brand.wait_until_final(processes)
        batch.assert_each_published_once()
    finally:
        processes.stop_all()


# -- what the kills found, reproduced in process ----------------------------------------------


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_enqueued_again(
    app, client, make_agency, mastodon
):
    """rq moves a job from its queue to an "intermediate" list, then marks it started. A worker
    killed in between leaves the job marked `queued` in no queue at all (rq's own maintenance
    fails it after 10 to 20 minutes): the dispatcher must not take that mark for a job still
    waiting, or the delivery sits `queued` all that time."""
    from datetime import timedelta

    from app import queue as queues
    from app.extensions import redis
    from app.models.base import utcnow
    from app.services import dispatcher
    from tests.pipeline import connect_mastodon, run_jobs

    owner = make_agency("Intermediate", approval_mode="none")
    brand_id = owner.brands[0]
    account = connect_mastodon(client, owner, brand_id, mastodon, "alice")
    made = client.post(
        f"/v1/brands/{brand_id}/posts",
        json={"text": "Taken, then dropped", "account_ids": [account]},
        headers=owner.headers,
    )
    post_id = made.get_json()["id"]
    answer = client.post(
        f"/v1/brands/{brand_id}/posts/{post_id}/publish-now", headers=owner.headers
    )
    assert answer.status_code == 200, answer.get_json()
    with app.app_context():
        redis.client.flushdb()
        assert dispatcher.dispatch()["claimed"] == 1
        publishing = queues.queue(queues.PUBLISHING)
        # What a worker's dequeue does (BLMOVE), before it dies.
        assert redis.client.lmove(publishing.key, publishing.intermediate_queue_key)
        config = app.config
        lease = config["PUBLISH_LEASE_SECONDS"] + config["PUBLISH_LOOKAHEAD_SECONDS"]
        later = utcnow() + timedelta(seconds=lease + 1)
        assert dispatcher.dispatch(now=later)["enqueued_again"] == 1
    run_jobs(app)
    assert mastodon.posts_made == 1
    with app.app_context():
        redis.client.flushdb()
