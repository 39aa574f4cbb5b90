"""Posting slots, scheduling transitions, the calendar and the CSV import, through the API."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app import tenancy
from app.models import Delivery, Post
from tests.factories import in_tenant

PARIS = ZoneInfo("Europe/Paris")


def _deliveries(app, owner, post_id: str) -> list[tuple[str, datetime | None]]:
    """The post's deliveries as stored: (status, scheduled for), sorted."""
    with in_tenant(app, owner.agency_id) as session:
        rows = session.scalars(tenancy.scoped_select(Delivery).where(Delivery.post_id == post_id))
        return sorted((d.status, d.scheduled_for) for d in rows)


def _posts(app, owner, brand_id: str) -> list[tuple[str, str, datetime | None]]:
    """The brand's posts as stored: (text, status, scheduled at)."""
    with in_tenant(app, owner.agency_id) as session:
        stmt = tenancy.scoped_select(Post).where(Post.brand_id == brand_id)
        return [(p.text, p.status, p.scheduled_at) for p in session.scalars(stmt)]


def _iso(value: datetime) -> str:
    return value.isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _base(brand_id: str) -> str:
    return f"/v1/brands/{brand_id}"


def _next_local(zone: ZoneInfo, wall: time, after: datetime) -> datetime:
    """The next `wall` o'clock in `zone` strictly after `after` (no DST gap at 09:00)."""
    day = after.astimezone(zone).date()
    while True:
        candidate = datetime.combine(day, wall, tzinfo=zone)
        if candidate > after:
            return candidate
        day += timedelta(days=1)


# -- posting slots -------------------------------------------------------------------------------


def test_posting_slots_round_trip_and_validation(client, make_agency):
    owner = make_agency("Slots", timezone="Europe/Paris")
    url = f"{_base(owner.brands[0])}/posting-slots"
    assert client.get(url, headers=owner.headers).get_json() == {
        "timezone": "Europe/Paris",
        "slots": [],
    }
    wanted = [
        {"weekday": "wednesday", "time": "17:30"},
        {"weekday": "monday", "time": "09:00"},
    ]
    put = client.put(url, json={"slots": wanted}, headers=owner.headers)
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["slots"] == [wanted[1], wanted[0]]
    assert client.get(url, headers=owner.headers).get_json()["slots"] == [wanted[1], wanted[0]]

    for bad in (
        [{"weekday": "funday", "time": "09:00"}],
        [{"weekday": "monday", "time": "24:00"}],
        [{"weekday": "monday", "time": "9:00"}],
        [{"weekday": "monday", "time": "09:00"}, {"weekday": "monday", "time": "09:00"}],
    ):
        response = client.put(url, json={"slots": bad}, headers=owner.headers)
        assert response.status_code == 422, bad
        assert response.content_type == "application/problem+json"
    # Unchanged by the refused requests.
    assert len(client.get(url, headers=owner.headers).get_json()["slots"]) == 2


def test_posting_slots_are_a_manager_setting(client, make_agency, invite_user):
    owner = make_agency("Roles")
    editor = invite_user(owner, brand_id=owner.brands[0], brand_role="editor")
    url = f"{_base(owner.brands[0])}/posting-slots"
    assert client.get(url, headers=editor.headers).status_code == 200
    refused = client.put(url, json={"slots": []}, headers=editor.headers)
    assert refused.status_code == 403


# -- schedule at an instant ----------------------------------------------------------------------


def test_schedule_creates_deliveries_and_refuses_naive_and_past(client, make_agency, app, factory):
    owner = make_agency("Sched")
    brand = owner.brands[0]
    accounts = [factory.account(owner, brand), factory.account(owner, brand)]
    post = factory.post(owner, brand, accounts, status="approved")
    url = f"{_base(brand)}/posts/{post}/schedule"

    naive = client.post(url, json={"at": "2030-01-01T09:00:00"}, headers=owner.headers)
    assert naive.status_code == 422
    assert "offset" in naive.get_json()["errors"]["at"][0]
    past = client.post(url, json={"at": "2020-01-01T09:00:00+01:00"}, headers=owner.headers)
    assert past.status_code == 422
    assert "past" in past.get_json()["detail"]

    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    done = client.post(url, json={"at": _iso(at.astimezone(PARIS))}, headers=owner.headers)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "scheduled"
    assert _parse(done.get_json()["scheduled_at"]) == at
    assert _deliveries(app, owner, post) == [("scheduled", at), ("scheduled", at)]

    again = client.post(url, json={"at": _iso(at)}, headers=owner.headers)
    assert again.status_code == 409
    assert "reschedule" in again.get_json()["detail"]


@pytest.mark.parametrize("status", ["draft", "in_review", "rejected"])
def test_content_needing_approval_cannot_be_scheduled(client, make_agency, app, factory, status):
    owner = make_agency("Approval", approval_mode="internal")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status=status)
    at = _iso(datetime.now(UTC) + timedelta(days=1))
    for action, body in (("schedule", {"at": at}), ("queue", None), ("publish-now", None)):
        response = client.post(
            f"{_base(brand)}/posts/{post}/{action}", json=body, headers=owner.headers
        )
        assert response.status_code == 409, (action, response.get_json())
        assert "approved" in response.get_json()["detail"]
    assert _deliveries(app, owner, post) == []


# A rejected post, left from when the brand reviewed posts, is scheduled like a draft: it cannot
# be submitted in a brand without review, and was once refused here, stuck for good.
@pytest.mark.parametrize("status", ["draft", "rejected"])
def test_draft_is_scheduled_directly_when_the_brand_has_no_review(
    client, make_agency, factory, status
):
    owner = make_agency("NoReview", approval_mode="none")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status=status)
    at = _iso(datetime.now(UTC) + timedelta(hours=2))
    response = client.post(
        f"{_base(brand)}/posts/{post}/schedule", json={"at": at}, headers=owner.headers
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "scheduled"


def test_network_rules_are_checked_before_scheduling(client, make_agency, factory):
    owner = make_agency("Rules")
    brand = owner.brands[0]
    account = factory.account(owner, brand, network="bluesky")
    post = factory.post(owner, brand, [account], text="x" * 301, status="approved")
    at = _iso(datetime.now(UTC) + timedelta(days=1))
    response = client.post(
        f"{_base(brand)}/posts/{post}/schedule", json={"at": at}, headers=owner.headers
    )
    assert response.status_code == 422
    assert account in response.get_json()["detail"]


# -- queue ---------------------------------------------------------------------------------------


def test_queue_takes_the_next_free_slots_in_the_brand_time_zone(client, make_agency, factory):
    owner = make_agency("Queue", timezone="Europe/Paris")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    no_slots = factory.post(owner, brand, [account], status="approved")
    refused = client.post(f"{_base(brand)}/posts/{no_slots}/queue", headers=owner.headers)
    assert refused.status_code == 409
    assert "posting slots" in refused.get_json()["detail"]

    daily = [
        {"weekday": d, "time": "09:00"}
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    ]
    client.put(f"{_base(brand)}/posting-slots", json={"slots": daily}, headers=owner.headers)
    first_slot = _next_local(PARIS, time(9), datetime.now(UTC))
    # A post already scheduled in the first slot keeps it: the queue skips it.
    factory.post(owner, brand, [account], status="scheduled", scheduled_at=first_slot)

    queued = []
    for _ in range(2):
        post = factory.post(owner, brand, [account], status="approved")
        response = client.post(f"{_base(brand)}/posts/{post}/queue", headers=owner.headers)
        assert response.status_code == 200, response.get_json()
        queued.append(_parse(response.get_json()["scheduled_at"]))
    second_slot = _next_local(PARIS, time(9), first_slot)
    third_slot = _next_local(PARIS, time(9), second_slot)
    assert queued == [second_slot, third_slot]
    assert all(q.astimezone(PARIS).time() == time(9) for q in queued)


# -- publish now, reschedule, unschedule, cancel -------------------------------------------------


def test_publish_now_schedules_for_the_current_instant(client, make_agency, app, factory):
    owner = make_agency("Now")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status="approved")
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = client.post(f"{_base(brand)}/posts/{post}/publish-now", headers=owner.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "scheduled"
    at = _parse(body["scheduled_at"])
    assert before <= at <= datetime.now(UTC) + timedelta(seconds=1)
    assert _deliveries(app, owner, post) == [("scheduled", at)]


def test_reschedule_unschedule_and_cancel(client, make_agency, app, factory):
    owner = make_agency("Moves", approval_mode="internal")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status="approved")
    base = f"{_base(brand)}/posts/{post}"
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    later = soon + timedelta(days=2)

    not_yet = client.post(f"{base}/reschedule", json={"at": _iso(later)}, headers=owner.headers)
    assert not_yet.status_code == 409
    assert client.post(f"{base}/unschedule", headers=owner.headers).status_code == 409

    scheduled = client.post(f"{base}/schedule", json={"at": _iso(soon)}, headers=owner.headers)
    assert scheduled.status_code == 200
    moved = client.post(f"{base}/reschedule", json={"at": _iso(later)}, headers=owner.headers)
    assert moved.status_code == 200, moved.get_json()
    assert _parse(moved.get_json()["scheduled_at"]) == later
    assert _deliveries(app, owner, post) == [("scheduled", later)]
    past = client.post(
        f"{base}/reschedule", json={"at": "2020-01-01T00:00:00Z"}, headers=owner.headers
    )
    assert past.status_code == 422

    back = client.post(f"{base}/unschedule", headers=owner.headers)
    assert back.status_code == 200, back.get_json()
    assert back.get_json()["status"] == "approved"
    assert back.get_json()["scheduled_at"] is None
    assert _deliveries(app, owner, post) == []

    scheduled = client.post(f"{base}/schedule", json={"at": _iso(soon)}, headers=owner.headers)
    assert scheduled.status_code == 200
    cancelled = client.post(f"{base}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] == "cancelled"
    assert _deliveries(app, owner, post) == [("cancelled", soon)]
    assert (
        client.post(f"{base}/schedule", json={"at": _iso(later)}, headers=owner.headers).status_code
        == 409
    )


def test_unschedule_goes_back_to_draft_without_review(client, make_agency, factory):
    owner = make_agency("Draft", approval_mode="none")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status="draft")
    base = f"{_base(brand)}/posts/{post}"
    assert client.post(f"{base}/publish-now", headers=owner.headers).status_code == 200
    assert client.post(f"{base}/unschedule", headers=owner.headers).get_json()["status"] == "draft"


def test_another_agency_cannot_schedule(client, make_agency, factory):
    owner = make_agency("Mine")
    other = make_agency("Theirs")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status="approved")
    for path in (
        f"{_base(brand)}/posts/{post}/publish-now",
        f"{_base(other.brands[0])}/posts/{post}/publish-now",
    ):
        assert client.post(path, headers=other.headers).status_code == 404


# -- calendar ------------------------------------------------------------------------------------


def test_calendar_lists_posts_and_free_slots_across_spring_forward(client, make_agency, factory):
    owner = make_agency("Cal", timezone="Europe/Paris")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    slots = [
        {"weekday": "saturday", "time": "09:00"},
        {"weekday": "sunday", "time": "09:00"},
        {"weekday": "sunday", "time": "02:30"},
        {"weekday": "monday", "time": "09:00"},
    ]
    client.put(f"{_base(brand)}/posting-slots", json={"slots": slots}, headers=owner.headers)
    # Saturday 2026-03-28 09:00 CET is taken; Paris springs forward on Sunday 2026-03-29.
    taken = datetime(2026, 3, 28, 8, tzinfo=UTC)
    post = factory.post(owner, brand, [account], status="published", scheduled_at=taken)
    factory.post(owner, brand, [account], status="draft")  # not on the calendar

    response = client.get(
        f"{_base(brand)}/calendar",
        query_string={"from": "2026-03-28T00:00:00+01:00", "to": "2026-03-31T00:00:00+02:00"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["timezone"] == "Europe/Paris"
    assert [(p["id"], p["status"]) for p in body["posts"]] == [(post, "published")]
    assert _parse(body["posts"][0]["at"]) == taken
    assert body["posts"][0]["local_at"] == "2026-03-28T09:00:00+01:00"
    assert [s["local_at"] for s in body["free_slots"]] == [
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist that night: first valid time after
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]
    assert [_parse(s["at"]) for s in body["free_slots"]] == [
        datetime(2026, 3, 29, 1, tzinfo=UTC),
        datetime(2026, 3, 29, 7, tzinfo=UTC),
        datetime(2026, 3, 30, 7, tzinfo=UTC),
    ]


def test_calendar_fall_back_in_new_york_shows_each_slot_once(client, make_agency):
    owner = make_agency("NY", timezone="America/New_York")
    brand = owner.brands[0]
    slots = [{"weekday": "sunday", "time": "01:30"}, {"weekday": "sunday", "time": "09:00"}]
    client.put(f"{_base(brand)}/posting-slots", json={"slots": slots}, headers=owner.headers)
    body = client.get(
        f"{_base(brand)}/calendar",
        query_string={"from": "2026-11-01T00:00:00-04:00", "to": "2026-11-02T00:00:00-05:00"},
        headers=owner.headers,
    ).get_json()
    assert [s["local_at"] for s in body["free_slots"]] == [
        "2026-11-01T01:30:00-04:00",  # the first 01:30 (EDT), not again at 01:30 EST
        "2026-11-01T09:00:00-05:00",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}, "query.to"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "query.to"),
        ({"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "query.from"),
        ({"from": "2026-01-01T00:00:00Z"}, "query.to"),
    ],
)
def test_calendar_range_is_checked(client, make_agency, query, field):
    owner = make_agency("Range")
    response = client.get(
        f"{_base(owner.brands[0])}/calendar", query_string=query, headers=owner.headers
    )
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


# -- CSV import ----------------------------------------------------------------------------------


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_csv_with_some_invalid_rows_creates_nothing(client, make_agency, app, factory):
    owner = make_agency("Csv")
    brand = owner.brands[0]
    mastodon = factory.account(owner, brand)
    bluesky = factory.account(owner, brand, network="bluesky")
    other = make_agency("Other")
    foreign = factory.account(other, other.brands[0])  # another agency's account: unknown here
    future = _iso(datetime.now(UTC) + timedelta(days=2))
    body = _csv(
        "text,accounts,time,labels",
        f"Fine,{mastodon},{future},spring",
        f"Unknown account,{foreign},{future},",
        f"No offset,{mastodon},2030-01-01T09:00:00,",
        f"Past,{mastodon},2020-01-01T09:00:00Z,",
        f'"{"y" * 301}","{mastodon};{bluesky}",{future},',
        f",{mastodon},{future},",
    )
    response = client.post(
        f"{_base(brand)}/posts/import",
        data=body,
        headers={**owner.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert set(errors) == {
        "rows.3.accounts",
        "rows.4.time",
        "rows.5.time",
        "rows.6.text",
        "rows.7.text",
    }
    assert "offset" in errors["rows.4.time"][0]
    assert bluesky in errors["rows.6.text"][0]  # Bluesky refuses 301 characters, Mastodon not
    assert "nothing was imported" in response.get_json()["detail"]
    assert _posts(app, owner, brand) == []


def test_csv_all_valid_creates_and_schedules_everything(client, make_agency, app, factory):
    owner = make_agency("CsvOk", timezone="Europe/Paris")
    brand = owner.brands[0]
    mastodon = factory.account(owner, brand)
    bluesky = factory.account(owner, brand, network="bluesky")
    daily = [
        {"weekday": d, "time": "09:00"}
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    ]
    client.put(f"{_base(brand)}/posting-slots", json={"slots": daily}, headers=owner.headers)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5, minutes=7)
    body = _csv(
        "text,accounts,time,labels",
        f"First,{mastodon} {bluesky},{_iso(at)},spring;menu",
        f'"Second, queued","{mastodon}",,',
        f"Third,{bluesky};,,",
    )
    response = client.post(
        f"{_base(brand)}/posts/import",
        data={"file": (io.BytesIO(body), "posts.csv", "text/csv")},
        headers=owner.headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    result = response.get_json()
    assert result["count"] == 3
    first, second, third = result["posts"]
    assert first["text"] == "First" and first["status"] == "scheduled"
    assert sorted(first["account_ids"]) == sorted([mastodon, bluesky])
    assert first["labels"] == ["menu", "spring"]
    assert _parse(first["scheduled_at"]) == at
    slot1 = _next_local(PARIS, time(9), datetime.now(UTC))
    slot2 = _next_local(PARIS, time(9), slot1)
    assert (second["text"], _parse(second["scheduled_at"])) == ("Second, queued", slot1)
    assert _parse(third["scheduled_at"]) == slot2
    assert len(_posts(app, owner, brand)) == 3
    assert len(_deliveries(app, owner, first["id"])) == 2


def test_csv_format_problems_are_clear(client, make_agency):
    owner = make_agency("CsvBad", approval_mode="internal")
    url = f"{_base(owner.brands[0])}/posts/import"
    headers = {**owner.headers, "Content-Type": "text/csv"}
    cases = [
        (b"", "file"),
        (b"text,accounts,when\n", "rows.1"),
        (b"text,accounts\n", "file"),
        (b"\xff\xfe\x00bad", "file"),
    ]
    for data, key in cases:
        response = client.post(url, data=data, headers=headers)
        assert response.status_code == 422, data
        assert key in response.get_json()["errors"], response.get_json()
    json_body = client.post(url, json={"text": "x"}, headers=owner.headers)
    assert json_body.status_code == 422
    too_many = b"text,accounts\n" + b"a,b\n" * 1001
    assert client.post(url, data=too_many, headers=headers).status_code == 422


def test_csv_in_an_approval_brand_imports_drafts(client, make_agency, factory):
    owner = make_agency("CsvReview", approval_mode="internal")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    url = f"{_base(brand)}/posts/import"
    headers = {**owner.headers, "Content-Type": "text/csv"}
    future = _iso(datetime.now(UTC) + timedelta(days=1))
    timed = client.post(
        url, data=_csv("text,accounts,time", f"Hi,{account},{future}"), headers=headers
    )
    assert timed.status_code == 422
    assert "approval" in timed.get_json()["errors"]["rows.2.time"][0]
    drafts = client.post(url, data=_csv("text,accounts", f"Hi,{account}"), headers=headers)
    assert drafts.status_code == 201, drafts.get_json()
    assert drafts.get_json()["posts"][0]["status"] == "draft"
    assert drafts.get_json()["posts"][0]["scheduled_at"] is None


def test_instants_at_the_edge_of_the_calendar_are_a_422_not_a_500(client, make_agency, factory):
    owner = make_agency("Edge", timezone="Pacific/Kiritimati")
    brand = owner.brands[0]
    client.put(
        f"{_base(brand)}/posting-slots",
        json={"slots": [{"weekday": "friday", "time": "23:30"}]},
        headers=owner.headers,
    )
    post = factory.post(owner, brand, [factory.account(owner, brand)], status="approved")
    for at in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        response = client.post(
            f"{_base(brand)}/posts/{post}/schedule", json={"at": at}, headers=owner.headers
        )
        assert response.status_code == 422, at
    edge = client.get(
        f"{_base(brand)}/calendar",
        query_string={"from": "9000-12-01T00:00:00Z", "to": "9000-12-31T23:59:59Z"},
        headers=owner.headers,
    )
    assert edge.status_code == 200, edge.get_json()
    assert len(edge.get_json()["free_slots"]) in (4, 5)
    beyond = client.get(
        f"{_base(brand)}/calendar",
        query_string={"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T00:00:00Z"},
        headers=owner.headers,
    )
    assert beyond.status_code == 422


def test_csv_import_replays_with_the_same_idempotency_key(client, make_agency, app, factory):
    owner = make_agency("CsvIdem")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    future = _iso(datetime.now(UTC) + timedelta(days=3))
    body = _csv("text,accounts,time", f"Once,{account},{future}")
    headers = {**owner.headers, "Content-Type": "text/csv", "Idempotency-Key": "import-1"}
    first = client.post(f"{_base(brand)}/posts/import", data=body, headers=headers)
    again = client.post(f"{_base(brand)}/posts/import", data=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.get_json()
    assert again.get_json() == first.get_json()
    assert len(_posts(app, owner, brand)) == 1
    other = client.post(
        f"{_base(brand)}/posts/import",
        data=_csv("text,accounts,time", f"Twice,{account},{future}"),
        headers=headers,
    )
    assert other.status_code == 422


def test_multipart_part_without_a_name_is_a_422_with_an_idempotency_key(client, make_agency):
    owner = make_agency("Nameless")
    body = (
        b"--b\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n"
        b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n--b--\r\n'
    )
    response = client.post(
        f"{_base(owner.brands[0])}/posts/import",
        data=body,
        headers={
            **owner.headers,
            "Content-Type": "multipart/form-data; boundary=b",
            "Idempotency-Key": "nameless",
        },
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "file" in response.get_json()["errors"]


def test_posts_queued_at_the_same_moment_take_different_slots(client, make_agency, factory):
    import threading

    owner = make_agency("Race", timezone="Europe/Paris")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    daily = [
        {"weekday": d, "time": "09:00"}
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    ]
    client.put(f"{_base(brand)}/posting-slots", json={"slots": daily}, headers=owner.headers)
    posts = [factory.post(owner, brand, [account], status="approved") for _ in range(4)]
    start = threading.Barrier(len(posts))
    answers: dict[str, object] = {}

    def queue(post_id: str) -> None:
        start.wait()
        answers[post_id] = client.application.test_client().post(
            f"{_base(brand)}/posts/{post_id}/queue", headers=owner.headers
        )

    threads = [threading.Thread(target=queue, args=(p,)) for p in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.status_code == 200 for r in answers.values()), [
        r.get_json() for r in answers.values()
    ]
    instants = [_parse(r.get_json()["scheduled_at"]) for r in answers.values()]
    assert len(set(instants)) == len(posts)
