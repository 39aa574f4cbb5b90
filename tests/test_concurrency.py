"""Requests racing each other, on real threads, on whichever database the suite runs on.

Each test fires the same request from several threads released together by a barrier, for
several rounds: a race that a single round may miss shows up in one of them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import Brand, Delivery
from app.models.post import WEEKDAYS
from tests.helpers import PROBLEM_JSON, owner_connection

THREADS = 8
ROUNDS = 12


def race(app, calls: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each call (given its own test client) on its own thread, all released at once."""
    start = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        client = app.test_client()
        start.wait()
        answers[index] = calls[index](client)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _brands_of(database, agency_id: str) -> int:
    with owner_connection(database) as connection:
        return connection.execute(
            select(func.count()).select_from(Brand).where(Brand.agency_id == agency_id)
        ).scalar_one()


def _deliveries_of(database, post_id: str) -> int:
    with owner_connection(database) as connection:
        return connection.execute(
            select(func.count()).select_from(Delivery).where(Delivery.post_id == post_id)
        ).scalar_one()


def test_parallel_creates_with_one_idempotency_key_never_fail(app, make_agency, database):
    """Every racer gets the first response (201, replayed) or a 409 "in progress"; never a 500,
    and one brand per key."""
    owner = make_agency(brands=0)
    statuses: Counter[int] = Counter()
    for round_ in range(ROUNDS):
        headers = {**owner.headers, "Idempotency-Key": f"race-{round_}"}

        def create(client, headers=headers, round_=round_):
            return client.post("/v1/brands", json={"name": f"Raced {round_}"}, headers=headers)

        answers = race(app, [create] * THREADS)
        statuses.update(a.status_code for a in answers)
        created = [a for a in answers if a.status_code == 201]
        assert created, [a.get_data(as_text=True) for a in answers]
        assert len({a.get_json()["id"] for a in created}) == 1
        for answer in answers:
            assert answer.status_code in (201, 409), answer.get_data(as_text=True)
            if answer.status_code == 409:
                assert answer.mimetype == PROBLEM_JSON
                assert "in progress" in answer.get_json()["detail"]
                assert answer.headers["Retry-After"]
        assert _brands_of(database, owner.agency_id) == round_ + 1
    assert set(statuses) <= {201, 409}, statuses


def test_posts_queued_at_once_never_share_a_slot(app, make_agency, factory):
    """Posts queued in parallel each take their own slot, on SQLite (the database's write lock)
    as on PostgreSQL (a row lock on the brand)."""
    owner = make_agency("Queue race", timezone="Europe/Paris", approval_mode="none")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    daily = [{"weekday": day, "time": "09:00"} for day in WEEKDAYS]
    app.test_client().put(
        f"/v1/brands/{brand}/posting-slots", json={"slots": daily}, headers=owner.headers
    )
    taken: list[str] = []
    for _ in range(ROUNDS // 2):
        posts = [
            factory.post(owner, brand, [account], status="approved") for _ in range(THREADS // 2)
        ]

        def queue(client, post_id):
            return client.post(f"/v1/brands/{brand}/posts/{post_id}/queue", headers=owner.headers)

        answers = race(app, [lambda c, p=p: queue(c, p) for p in posts])
        assert [a.status_code for a in answers] == [200] * len(posts), [
            a.get_data(as_text=True) for a in answers
        ]
        taken += [a.get_json()["scheduled_at"] for a in answers]
    assert len(set(taken)) == len(taken), Counter(taken).most_common(3)
    # Days follow each other: no slot was skipped either.
    instants = sorted(datetime.fromisoformat(at) for at in taken)
    assert all(b - a == timedelta(days=1) for a, b in zip(instants, instants[1:], strict=False))


def test_one_post_queued_twice_at_once_is_queued_once(app, make_agency, factory, database):
    owner = make_agency("Double queue", approval_mode="none")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    daily = [{"weekday": day, "time": "09:00"} for day in WEEKDAYS]
    app.test_client().put(
        f"/v1/brands/{brand}/posting-slots", json={"slots": daily}, headers=owner.headers
    )
    for _ in range(ROUNDS // 4):
        post_id = factory.post(owner, brand, [account], status="approved")

        def queue(client, post_id=post_id):
            return client.post(f"/v1/brands/{brand}/posts/{post_id}/queue", headers=owner.headers)

        answers = race(app, [queue] * 4)
        assert sorted(a.status_code for a in answers) == [200, 409, 409, 409], [
            a.get_data(as_text=True) for a in answers
        ]
        assert _deliveries_of(database, post_id) == 1


def test_a_csv_import_and_queue_calls_at_once_never_share_a_slot(app, make_agency, factory):
    owner = make_agency("Import race", approval_mode="none")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    daily = [{"weekday": day, "time": "09:00"} for day in WEEKDAYS]
    app.test_client().put(
        f"/v1/brands/{brand}/posting-slots", json={"slots": daily}, headers=owner.headers
    )
    csv = "text,accounts\n" + "".join(f"Row {i},{account}\n" for i in range(3))

    def queue(client, post_id):
        return client.post(f"/v1/brands/{brand}/posts/{post_id}/queue", headers=owner.headers)

    def import_rows(client):
        return client.post(
            f"/v1/brands/{brand}/posts/import",
            data=csv,
            headers={**owner.headers, "Content-Type": "text/csv"},
        )

    for round_ in range(1, 4):
        posts = [factory.post(owner, brand, [account], status="approved") for _ in range(3)]
        answers = race(app, [import_rows, *(lambda c, p=p: queue(c, p) for p in posts)])
        assert [a.status_code for a in answers] == [201, 200, 200, 200], [
            a.get_data(as_text=True) for a in answers
        ]
        listed = app.test_client().get(f"/v1/brands/{brand}/posts?limit=50", headers=owner.headers)
        taken = [p["scheduled_at"] for p in listed.get_json()["items"]]
        assert len(taken) == 6 * round_ and len(set(taken)) == len(taken), sorted(taken)


def test_a_write_kept_waiting_by_another_writer_is_a_503_to_retry(
    app, make_agency, database, db_backend
):
    """SQLite takes one writer at a time; a write that waited out busy_timeout is a 503 with
    Retry-After, not a 500."""
    if db_backend != "sqlite":
        pytest.skip("SQLite's database-wide write lock (PostgreSQL locks rows)")
    import sqlite3

    owner = make_agency(brands=0)
    blocker = sqlite3.connect(database.owner_url.removeprefix("sqlite:///"), timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        answer = app.test_client().post("/v1/brands", json={"name": "Waits"}, headers=owner.headers)
    finally:
        blocker.rollback()
        blocker.close()
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.mimetype == PROBLEM_JSON
    assert answer.headers["Retry-After"] == "1"
