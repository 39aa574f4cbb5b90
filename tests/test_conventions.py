"""API conventions every route shares: pages, ETags, idempotent creates, datetimes, request ids,
problem documents, CORS and health checks."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import marshmallow as ma
import pytest
from sqlalchemy import func, select

from app import create_app
from app.api import idempotency
from app.fields import Timestamp
from app.models import Brand, IdempotencyRecord
from app.models.base import utcnow
from tests.helpers import assert_problem, owner_connection

# -- keyset pagination ----------------------------------------------------------------------------


def test_keyset_pages_follow_the_link_header_to_the_end(client, make_agency):
    owner = make_agency(brands=5)
    seen: list[str] = []
    url = "/v1/brands?limit=2"
    pages = 0
    while url:
        response = client.get(url, headers=owner.headers)
        assert response.status_code == 200
        body = response.get_json()
        seen += [b["id"] for b in body["items"]]
        pages += 1
        link = response.headers.get("Link")
        if body["next_cursor"] is None:
            assert link is None
            url = None
        else:
            assert len(body["items"]) == 2
            assert link.endswith('>; rel="next"')
            target = link[1 : link.index(">")]
            assert f"cursor={body['next_cursor']}" in target and "limit=2" in target
            url = target.removeprefix("http://localhost")
    assert pages == 3
    assert seen == sorted(owner.brands)


def test_cursor_from_the_body_gives_the_next_page(client, make_agency):
    owner = make_agency(brands=3)
    first = client.get("/v1/brands?limit=1", headers=owner.headers).get_json()
    second = client.get(
        f"/v1/brands?limit=1&cursor={first['next_cursor']}", headers=owner.headers
    ).get_json()
    assert second["items"][0]["id"] > first["items"][0]["id"]


def test_exact_last_page_has_no_next(client, make_agency):
    owner = make_agency(brands=2)
    response = client.get("/v1/brands?limit=2", headers=owner.headers)
    assert response.get_json()["next_cursor"] is None
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "not a cursor",
        base64.urlsafe_b64encode(b"foo").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"brd_' OR 1=1 --").decode(),
    ],
)
def test_bad_cursor_is_422(client, make_agency, cursor):
    owner = make_agency(brands=1)
    response = client.get("/v1/brands", query_string={"cursor": cursor}, headers=owner.headers)
    assert "query.cursor" in assert_problem(response, 422)["errors"]


@pytest.mark.parametrize("limit", ["0", "-1", "201", "ten"])
def test_bad_limit_is_422(client, make_agency, limit):
    owner = make_agency(brands=1)
    response = client.get(f"/v1/brands?limit={limit}", headers=owner.headers)
    assert "query.limit" in assert_problem(response, 422)["errors"]


# -- ETag / If-Match ------------------------------------------------------------------------------


def test_if_match_guards_against_lost_updates(client, make_agency):
    owner = make_agency(brands=1)
    url = f"/v1/brands/{owner.brands[0]}"
    etag = client.get(url, headers=owner.headers).headers["ETag"]

    first = client.patch(url, json={"name": "Alice's"}, headers={**owner.headers, "If-Match": etag})
    assert first.status_code == 200
    assert first.headers["ETag"] != etag

    stale = client.patch(url, json={"name": "Bob's"}, headers={**owner.headers, "If-Match": etag})
    assert_problem(stale, 412)
    assert stale.headers["ETag"] == first.headers["ETag"]
    assert client.get(url, headers=owner.headers).get_json()["name"] == "Alice's"

    fresh = client.patch(
        url, json={"name": "Bob's"}, headers={**owner.headers, "If-Match": first.headers["ETag"]}
    )
    assert fresh.status_code == 200
    assert client.get(url, headers=owner.headers).headers["ETag"] == fresh.headers["ETag"]


def test_patch_without_if_match_is_last_write_wins(client, make_agency):
    owner = make_agency(brands=1)
    url = f"/v1/brands/{owner.brands[0]}"
    response = client.patch(url, json={"name": "Anyone"}, headers=owner.headers)
    assert response.status_code == 200
    assert response.headers["ETag"]


def test_if_match_accepts_weak_and_listed_tags(client, make_agency):
    owner = make_agency(brands=1)
    url = f"/v1/brands/{owner.brands[0]}"
    etag = client.get(url, headers=owner.headers).headers["ETag"]
    listed = client.patch(
        url, json={"name": "x"}, headers={**owner.headers, "If-Match": f'"other", W/{etag}'}
    )
    assert listed.status_code == 200


def test_failed_patch_does_not_change_the_etag(client, make_agency):
    owner = make_agency(brands=1)
    url = f"/v1/brands/{owner.brands[0]}"
    etag = client.get(url, headers=owner.headers).headers["ETag"]
    bad = client.patch(url, json={"timezone": "Nowhere/Atlantis"}, headers=owner.headers)
    assert_problem(bad, 422)
    assert client.get(url, headers=owner.headers).headers["ETag"] == etag


# -- Idempotency-Key ------------------------------------------------------------------------------


def _brand_count(database, agency_id: str) -> int:
    with owner_connection(database) as connection:
        return connection.execute(
            select(func.count()).select_from(Brand).where(Brand.agency_id == agency_id)
        ).scalar_one()


def test_same_key_and_body_replays_the_first_response(client, make_agency, database):
    owner = make_agency(brands=0)
    headers = {**owner.headers, "Idempotency-Key": "create-brand-1"}
    first = client.post("/v1/brands", json={"name": "Once"}, headers=headers)
    again = client.post("/v1/brands", json={"name": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _brand_count(database, owner.agency_id) == 1


def test_same_key_with_another_body_is_422(client, make_agency, database):
    owner = make_agency(brands=0)
    headers = {**owner.headers, "Idempotency-Key": "create-brand-2"}
    assert client.post("/v1/brands", json={"name": "One"}, headers=headers).status_code == 201
    other = client.post("/v1/brands", json={"name": "Two"}, headers=headers)
    assert "header.Idempotency-Key" in assert_problem(other, 422)["errors"]
    assert _brand_count(database, owner.agency_id) == 1


def test_key_order_and_whitespace_do_not_change_the_body(client, make_agency):
    owner = make_agency(brands=0)
    headers = {**owner.headers, "Idempotency-Key": "k", "Content-Type": "application/json"}
    first = client.post("/v1/brands", data='{"name": "A", "timezone": "UTC"}', headers=headers)
    again = client.post("/v1/brands", data='{"timezone":"UTC","name":"A"}', headers=headers)
    assert again.get_json()["id"] == first.get_json()["id"]


def test_different_agencies_may_use_the_same_key(client, make_agency, database):
    first, second = make_agency(brands=0), make_agency(brands=0)
    made = [
        client.post(
            "/v1/brands", json={"name": "Same"}, headers={**a.headers, "Idempotency-Key": "shared"}
        )
        for a in (first, second)
    ]
    assert [r.status_code for r in made] == [201, 201]
    assert made[0].get_json()["id"] != made[1].get_json()["id"]
    assert "Idempotent-Replayed" not in made[1].headers
    assert _brand_count(database, first.agency_id) == _brand_count(database, second.agency_id) == 1


def test_failed_create_frees_the_key(client, make_agency):
    owner = make_agency(brands=0)
    headers = {**owner.headers, "Idempotency-Key": "retry-me"}
    failed = client.post("/v1/brands", json={"name": "X", "timezone": "Nowhere/X"}, headers=headers)
    assert_problem(failed, 422)
    fixed = client.post("/v1/brands", json={"name": "X", "timezone": "UTC"}, headers=headers)
    assert fixed.status_code == 201


def test_replay_does_not_leak_across_agencies(client, make_agency):
    first, second = make_agency(brands=0), make_agency(brands=0)
    client.post(
        "/v1/brands", json={"name": "Mine"}, headers={**first.headers, "Idempotency-Key": "k1"}
    )
    theirs = client.post(
        "/v1/brands", json={"name": "Mine"}, headers={**second.headers, "Idempotency-Key": "k1"}
    )
    listed = client.get("/v1/brands", headers=second.headers).get_json()["items"]
    assert [b["id"] for b in listed] == [theirs.get_json()["id"]]


def _reserve_key(factory, owner, key: str, **fields) -> None:
    """A key as a first request left it: in flight (no status yet), unless `fields` say more."""
    with factory.in_agency(owner) as rows:
        rows.idempotency_record(
            scope=idempotency.caller_scope(owner.agency_id, "user", owner.user_id),
            key=hashlib.sha256(key.encode()).hexdigest(),  # stored hashed
            **fields,
        )


def test_key_of_a_request_still_in_flight_is_409_with_retry_after(
    client, make_agency, database, factory
):
    owner = make_agency(brands=0)
    body = {"name": "Slow"}
    digest = hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()
    _reserve_key(factory, owner, "in-flight", request_hash=digest)
    response = client.post(
        "/v1/brands", json=body, headers={**owner.headers, "Idempotency-Key": "in-flight"}
    )
    assert_problem(response, 409)
    assert response.headers["Retry-After"]
    assert _brand_count(database, owner.agency_id) == 0


def test_expired_key_is_forgotten(client, make_agency, database, factory):
    owner = make_agency(brands=0)
    _reserve_key(
        factory,
        owner,
        "old",
        status_code=201,
        response_body="{}",
        expires_at=utcnow() - timedelta(seconds=1),
    )
    response = client.post(
        "/v1/brands", json={"name": "New"}, headers={**owner.headers, "Idempotency-Key": "old"}
    )
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert _brand_count(database, owner.agency_id) == 1


def test_housekeeping_purges_expired_idempotency_records(app, make_agency, factory, database):
    from app.services import maintenance

    owner = make_agency(brands=0)
    _reserve_key(factory, owner, "spent", expires_at=utcnow() - timedelta(seconds=1))
    _reserve_key(factory, owner, "live")
    with app.app_context():
        assert maintenance.purge_expired()["idempotency_records"] == 1
    with owner_connection(database) as connection:
        kept = connection.execute(select(IdempotencyRecord.key)).scalars().all()
    assert kept == [hashlib.sha256(b"live").hexdigest()]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_bad_idempotency_key_is_422(client, make_agency, key):
    owner = make_agency(brands=0)
    response = client.post(
        "/v1/brands", json={"name": "X"}, headers={**owner.headers, "Idempotency-Key": key}
    )
    assert_problem(response, 422)


# -- datetimes ------------------------------------------------------------------------------------


class _WhenSchema(ma.Schema):
    at = Timestamp(required=True)


def test_naive_datetime_is_refused_with_a_clear_message():
    with pytest.raises(ma.ValidationError) as raised:
        _WhenSchema().load({"at": "2026-03-29T09:00:00"})
    assert "offset" in raised.value.messages["at"][0]


def test_aware_datetime_is_kept_as_given():
    loaded = _WhenSchema().load({"at": "2026-03-29T09:00:00+02:00"})["at"]
    assert loaded == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert _WhenSchema().load({"at": "2026-03-29T07:00:00Z"})["at"] == loaded


def test_datetimes_in_responses_carry_an_offset(client, make_agency):
    owner = make_agency(brands=1)
    brand = client.get(f"/v1/brands/{owner.brands[0]}", headers=owner.headers).get_json()
    assert datetime.fromisoformat(brand["created_at"]).utcoffset() is not None


# -- request ids ----------------------------------------------------------------------------------


def test_valid_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-Id": "req-123.abc:9"})
    assert response.headers["X-Request-Id"] == "req-123.abc:9"


@pytest.mark.parametrize("garbage", ["has spaces", "x" * 129, "<script>", "é"])
def test_garbage_request_id_is_replaced(client, garbage):
    response = client.get("/healthz", headers={"X-Request-Id": garbage})
    replaced = response.headers["X-Request-Id"]
    assert replaced and replaced != garbage and len(replaced) <= 128


def test_request_id_is_made_when_absent_and_quoted_in_problems(client):
    response = client.get("/v1/nowhere", headers={"X-Request-Id": "trace-42"})
    assert assert_problem(response, 404)["request_id"] == "trace-42"
    assert client.get("/healthz").headers["X-Request-Id"]


# -- problem documents ----------------------------------------------------------------------------


def test_routing_errors_are_problems(client, make_agency):
    owner = make_agency(brands=0)
    assert_problem(client.get("/v1/no-such-thing", headers=owner.headers), 404)
    assert_problem(client.get("/nothing-here"), 404)
    not_allowed = client.put("/v1/brands", json={}, headers=owner.headers)
    assert_problem(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"] and "POST" in not_allowed.headers["Allow"]


def test_malformed_json_is_a_problem(client, make_agency):
    owner = make_agency(brands=0)
    response = client.post(
        "/v1/brands",
        data="{not json",
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


def test_unexpected_errors_are_500_problems_without_internals(app_config):
    app = create_app(dict(app_config))

    @app.get("/v1/explode")
    def _explode():
        raise RuntimeError("SELECT password_hash FROM users -- secret")

    app.view_functions["_explode"]._relais_public = True
    response = app.test_client().get("/v1/explode")
    body = assert_problem(response, 500)
    assert "password_hash" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["request_id"]


# -- CORS -----------------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"


def test_cors_headers_when_origins_are_configured(app_config, make_agency, client):
    owner = make_agency(brands=1)
    cors_client = create_app({**app_config, "CORS_ORIGINS": [ORIGIN]}).test_client()

    preflight = cors_client.options(
        "/v1/brands",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Idempotency-Key, Content-Type",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "idempotency-key" in allowed
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    real = cors_client.get("/v1/brands", headers={**owner.headers, "Origin": ORIGIN})
    assert real.status_code == 200
    assert real.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = real.headers["Access-Control-Expose-Headers"]
    for name in ("ETag", "Link", "X-Request-Id", "Retry-After"):
        assert name in exposed

    stranger = cors_client.get(
        "/v1/brands", headers={**owner.headers, "Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_no_cors_headers_by_default(client, make_agency):
    owner = make_agency(brands=0)
    response = client.get("/v1/brands", headers={**owner.headers, "Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


# -- health ---------------------------------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_when_database_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok", "media_storage": "ok"}


def test_readyz_is_503_when_redis_is_unreachable(app_config, client):
    down = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"}).test_client()
    # A problem document like every other 5xx, each check's state in the `checks` member.
    body = assert_problem(down.get("/readyz"), 503)
    assert body["type"].endswith("/not-ready") and body["title"] == "Not ready"
    assert body["detail"] == "Not ready: redis unreachable."
    assert body["checks"] == {
        "database": "ok",
        "redis": "unreachable",
        "media_storage": "ok",
    }
    # Another app's broken Redis does not leak into this one.
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(app_config, tmp_path):
    missing = tmp_path / "no-such-dir" / "db.sqlite"
    down = create_app({**app_config, "DATABASE_URL": f"sqlite:///{missing}"}).test_client()
    body = assert_problem(down.get("/readyz"), 503)
    assert "database unreachable" in body["detail"]
    assert body["checks"]["database"] == "unreachable"


def test_docs_ui_is_served(client):
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.")


def test_api_answers_are_never_cached(client, make_agency):
    owner = make_agency(brands=1)
    token = client.post("/v1/auth/token", json={"email": owner.email, "password": owner.password})
    key = client.post("/v1/api-keys", json={"name": "ci"}, headers=owner.headers)
    brand = client.get(f"/v1/brands/{owner.brands[0]}", headers=owner.headers)
    missing = client.get("/v1/brands/brd_0", headers=owner.headers)
    for response in (token, key, brand, missing):
        assert response.headers["Cache-Control"] == "no-store"
