"""Agency API keys: shown once, stored hashed, revocable, optionally limited to some brands."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.auth import principal as principal_module
from app.models import ApiKey
from tests.helpers import assert_problem, owner_connection


def _create(client, owner, **payload):
    response = client.post("/v1/api-keys", json={"name": "ci", **payload}, headers=owner.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _key_headers(created):
    return {"X-API-Key": created["key"]}


def test_secret_is_shown_once_and_never_listed(client, make_agency):
    owner = make_agency(brands=1)
    created = _create(client, owner)
    assert created["key"].startswith("rk_")
    assert created["id"].startswith("key_")
    assert created["key"].startswith(created["prefix"])
    assert created["last_used_at"] is None and created["revoked_at"] is None

    listed = client.get("/v1/api-keys", headers=owner.headers)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.get_json()["items"]] == [created["id"]]
    one = client.get(f"/v1/api-keys/{created['id']}", headers=owner.headers)
    assert one.status_code == 200
    for text in (listed.get_data(as_text=True), one.get_data(as_text=True)):
        assert created["key"] not in text
        assert '"key"' not in text and "key_hash" not in text


def test_key_is_stored_hashed(client, make_agency, database):
    owner = make_agency(brands=0)
    created = _create(client, owner)
    with owner_connection(database) as connection:
        row = connection.execute(select(ApiKey.__table__).where(ApiKey.id == created["id"])).one()
    assert row.key_hash == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] not in [str(value) for value in row]


def test_key_authenticates_until_revoked(client, make_agency):
    owner = make_agency(brands=1)
    created = _create(client, owner)
    assert client.get("/v1/brands", headers=_key_headers(created)).status_code == 200
    assert client.delete(f"/v1/api-keys/{created['id']}", headers=owner.headers).status_code == 204
    assert_problem(client.get("/v1/brands", headers=_key_headers(created)), 401)
    revoked = client.get(f"/v1/api-keys/{created['id']}", headers=owner.headers).get_json()
    assert revoked["revoked_at"] is not None


def test_key_limited_to_brands_sees_only_those(client, make_agency):
    owner = make_agency(brands=3)
    allowed, hidden = owner.brands[:2], owner.brands[2]
    created = _create(client, owner, brand_ids=allowed)
    assert sorted(created["brand_ids"]) == sorted(allowed)
    headers = _key_headers(created)

    listed = client.get("/v1/brands", headers=headers).get_json()
    assert sorted(b["id"] for b in listed["items"]) == sorted(allowed)
    assert client.get(f"/v1/brands/{allowed[0]}", headers=headers).status_code == 200
    assert_problem(client.get(f"/v1/brands/{hidden}", headers=headers), 404)
    assert_problem(client.patch(f"/v1/brands/{hidden}", json={"name": "x"}, headers=headers), 404)
    assert_problem(client.get(f"/v1/brands/{hidden}/export", headers=headers), 404)
    # A limited key is not an agency admin: it cannot create brands.
    assert_problem(client.post("/v1/brands", json={"name": "New"}, headers=headers), 403)


def test_key_limited_to_another_agencys_brand_is_404(client, make_agency):
    # A well-formed id of no brand you reach is a 404, as anywhere else (and the spec, which
    # cannot say which ids exist, then needs no 422 for a schema-valid body).
    owner = make_agency(brands=1)
    other = make_agency(brands=1)
    response = client.post(
        "/v1/api-keys", json={"name": "x", "brand_ids": other.brands}, headers=owner.headers
    )
    assert "brand_ids" in assert_problem(response, 404)["errors"]
    empty = client.post("/v1/api-keys", json={"name": "x", "brand_ids": []}, headers=owner.headers)
    assert_problem(empty, 422)


def test_another_agencys_key_is_404(client, make_agency):
    owner = make_agency(brands=0)
    other = make_agency(brands=0)
    created = _create(client, other)
    assert_problem(client.get(f"/v1/api-keys/{created['id']}", headers=owner.headers), 404)
    assert_problem(client.delete(f"/v1/api-keys/{created['id']}", headers=owner.headers), 404)


def test_api_key_cannot_create_keys_or_invite(client, make_agency):
    owner = make_agency(brands=1)
    headers = _key_headers(_create(client, owner))
    limited = _key_headers(_create(client, owner, brand_ids=owner.brands))
    for key_headers in (headers, limited):
        assert_problem(client.post("/v1/api-keys", json={"name": "x"}, headers=key_headers), 403)
        assert_problem(client.get("/v1/api-keys", headers=key_headers), 403)
        assert_problem(
            client.post(
                "/v1/invitations",
                json={"email": "a@example.com", "agency_role": "admin"},
                headers=key_headers,
            ),
            403,
        )
        assert_problem(
            client.post(
                "/v1/invitations",
                json={
                    "email": "c@example.com",
                    "brand_id": owner.brands[0],
                    "brand_role": "client",
                },
                headers=key_headers,
            ),
            403,
        )
        assert_problem(
            client.post(
                f"/v1/brands/{owner.brands[0]}/members",
                json={"user_id": owner.user_id, "role": "manager"},
                headers=key_headers,
            ),
            403,
        )


def test_members_cannot_manage_keys(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    member = invite_user(owner, agency_role="member")
    assert_problem(client.post("/v1/api-keys", json={"name": "x"}, headers=member.headers), 403)


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(principal_module, "utcnow", fake)
    return fake


def _last_used(client, owner, key_id):
    value = client.get(f"/v1/api-keys/{key_id}", headers=owner.headers).get_json()["last_used_at"]
    return datetime.fromisoformat(value) if value else None


def test_last_used_is_written_at_most_once_a_minute(client, make_agency, clock):
    owner = make_agency(brands=1)
    created = _create(client, owner)
    start = clock.now

    client.get("/v1/brands", headers=_key_headers(created))
    assert _last_used(client, owner, created["id"]) == start

    clock.now = start + timedelta(seconds=59)
    client.get("/v1/brands", headers=_key_headers(created))
    assert _last_used(client, owner, created["id"]) == start

    clock.now = start + timedelta(seconds=61)
    client.get("/v1/brands", headers=_key_headers(created))
    assert _last_used(client, owner, created["id"]) == clock.now


def test_reads_with_a_recently_used_key_do_not_write(client, make_agency, clock, app):
    owner = make_agency(brands=1)
    created = _create(client, owner)
    client.get("/v1/brands", headers=_key_headers(created))

    statements: list[str] = []
    from sqlalchemy import event

    engine = app.extensions["relais_db_engine"]

    def _log(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", _log)
    try:
        clock.now += timedelta(seconds=10)
        assert client.get("/v1/brands", headers=_key_headers(created)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", _log)
    assert not {"UPDATE", "INSERT", "DELETE"} & set(statements), statements
