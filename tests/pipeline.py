"""The publishing pipeline in process, for tests: what `relais cron` and `relais worker` do,
run here on the test Redis with RQ's SimpleWorker in burst mode.

- `run_jobs(app)`: work the dispatch and publishing queues until they are empty.
- `tick(app)`: one dispatcher run as `relais cron` enqueues it, then every job it leads to.
- `connect_mastodon(client, owner, brand_id, fake, user)`: an account connected through the API
  on a fake Mastodon instance (tests/fakes/mastodon.py).
- `deliveries_of(client, owner, brand_id, post_id)`: the post's deliveries as the API shows them.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app import queue

DISPATCH_JOB = "workers.jobs.publishing.dispatch_due_deliveries"


class BurstWorker(SimpleWorker):
    """SimpleWorker without its command channel (a pub/sub thread whose join costs up to a
    second per burst); nobody sends it commands in a test."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def run_jobs(app: Flask) -> None:
    with app.app_context():
        queues = [queue.queue(queue.DISPATCH), queue.queue(queue.PUBLISHING)]
        BurstWorker(queues, connection=queues[0].connection, serializer=JSONSerializer).work(
            burst=True
        )


def tick(app: Flask) -> None:
    with app.app_context():
        queue.enqueue(DISPATCH_JOB, queue_name=queue.DISPATCH)
    run_jobs(app)


def connect_mastodon(client: Any, owner: Any, brand_id: str, fake: Any, user: str) -> str:
    created = client.post(
        f"/v1/brands/{brand_id}/accounts",
        json={"network": "mastodon", "instance_url": fake.url, "access_token": fake.token(user)},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def deliveries_of(client: Any, owner: Any, brand_id: str, post_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/brands/{brand_id}/posts/{post_id}/deliveries", headers=owner.headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["items"]
