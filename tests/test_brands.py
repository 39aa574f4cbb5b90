"""Brands, the tenants: CRUD, settings, archive, offboarding and export."""

from __future__ import annotations

import json

import pytest

from tests.factories import brand_tables, count_brand_rows, insert_brand_rows
from tests.helpers import assert_problem, owner_connection


def _create(client, actor, **payload):
    response = client.post(
        "/v1/brands", json={"name": "Café Lumière", **payload}, headers=actor.headers
    )
    assert response.status_code == 201, response.get_json()
    return response


# -- CRUD and settings ----------------------------------------------------------------------------


def test_create_read_update_list(client, make_agency):
    owner = make_agency(brands=0)
    created = _create(client, owner)
    brand = created.get_json()
    assert brand["id"].startswith("brd_")
    assert created.headers["ETag"]
    assert brand["slug"] == "cafe-lumiere"
    assert brand["timezone"] == "UTC"
    assert brand["approval_mode"] == "none"
    assert brand["branding"] == {}
    assert brand["status"] == "active" and brand["archived_at"] is None

    fetched = client.get(f"/v1/brands/{brand['id']}", headers=owner.headers)
    assert fetched.get_json() == brand
    assert fetched.headers["ETag"] == created.headers["ETag"]

    patched = client.patch(
        f"/v1/brands/{brand['id']}",
        json={"name": "Café Soleil", "timezone": "Europe/Paris"},
        headers=owner.headers,
    )
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["name"] == "Café Soleil"
    assert patched.get_json()["timezone"] == "Europe/Paris"
    assert patched.get_json()["slug"] == "cafe-lumiere"  # a rename keeps the slug
    assert patched.get_json()["updated_at"] is not None

    listed = client.get("/v1/brands", headers=owner.headers).get_json()
    assert [b["id"] for b in listed["items"]] == [brand["id"]]
    assert listed["next_cursor"] is None


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "utc+2", "Europe/paris", "", "CET "])
def test_unknown_timezone_is_422_with_field_error(client, make_agency, timezone):
    owner = make_agency(brands=1)
    created = client.post(
        "/v1/brands", json={"name": "X", "timezone": timezone}, headers=owner.headers
    )
    assert "timezone" in assert_problem(created, 422)["errors"]
    patched = client.patch(
        f"/v1/brands/{owner.brands[0]}", json={"timezone": timezone}, headers=owner.headers
    )
    assert "timezone" in assert_problem(patched, 422)["errors"]


@pytest.mark.parametrize("timezone", ["Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC"])
def test_iana_timezones_are_accepted(client, make_agency, timezone):
    owner = make_agency(brands=0)
    assert _create(client, owner, timezone=timezone).get_json()["timezone"] == timezone


@pytest.mark.parametrize("mode", ["none", "internal", "internal_and_client"])
def test_approval_modes(client, make_agency, mode):
    owner = make_agency(brands=1)
    assert _create(client, owner, approval_mode=mode).get_json()["approval_mode"] == mode
    patched = client.patch(
        f"/v1/brands/{owner.brands[0]}", json={"approval_mode": mode}, headers=owner.headers
    )
    assert patched.get_json()["approval_mode"] == mode


def test_unknown_approval_mode_is_422(client, make_agency):
    owner = make_agency(brands=1)
    response = client.patch(
        f"/v1/brands/{owner.brands[0]}", json={"approval_mode": "sometimes"}, headers=owner.headers
    )
    assert "approval_mode" in assert_problem(response, 422)["errors"]


def test_branding_is_set_and_merged(client, make_agency):
    owner = make_agency(brands=0)
    brand = _create(
        client,
        owner,
        branding={"logo_url": "https://cdn.example.com/logo.png", "primary_color": "#112233"},
    ).get_json()
    assert brand["branding"] == {
        "logo_url": "https://cdn.example.com/logo.png",
        "primary_color": "#112233",
    }
    patched = client.patch(
        f"/v1/brands/{brand['id']}",
        json={"branding": {"secondary_color": "#abcdef"}},
        headers=owner.headers,
    ).get_json()
    assert patched["branding"] == {
        "logo_url": "https://cdn.example.com/logo.png",
        "primary_color": "#112233",
        "secondary_color": "#abcdef",
    }


@pytest.mark.parametrize(
    "branding", [{"primary_color": "red"}, {"logo_url": "javascript:alert(1)"}, {"unknown": 1}]
)
def test_bad_branding_is_422(client, make_agency, branding):
    owner = make_agency(brands=0)
    response = client.post(
        "/v1/brands", json={"name": "X", "branding": branding}, headers=owner.headers
    )
    assert "branding" in assert_problem(response, 422)["errors"]


def test_slug_is_unique_per_agency(client, make_agency):
    owner = make_agency(brands=0)
    first = _create(client, owner, slug="acme").get_json()
    assert_problem(
        client.post("/v1/brands", json={"name": "Other", "slug": "acme"}, headers=owner.headers),
        409,
    )
    second = _create(client, owner, slug="acme-two").get_json()
    conflict = client.patch(
        f"/v1/brands/{second['id']}", json={"slug": "acme"}, headers=owner.headers
    )
    assert "slug" in assert_problem(conflict, 409)["errors"]
    # Keeping one's own slug is no conflict.
    same = client.patch(f"/v1/brands/{first['id']}", json={"slug": "acme"}, headers=owner.headers)
    assert same.status_code == 200
    # Another agency may use the same slug.
    other = make_agency(brands=0)
    assert _create(client, other, slug="acme").get_json()["slug"] == "acme"


def test_slugs_made_from_names_do_not_collide(client, make_agency):
    owner = make_agency(brands=0)
    slugs = [_create(client, owner, name="Acme").get_json()["slug"] for _ in range(3)]
    assert slugs == ["acme", "acme-2", "acme-3"]


@pytest.mark.parametrize("slug", ["Acme", "acme_1", "-acme", "acme--x", "a" * 61])
def test_bad_slug_is_422(client, make_agency, slug):
    owner = make_agency(brands=0)
    response = client.post("/v1/brands", json={"name": "X", "slug": slug}, headers=owner.headers)
    assert "slug" in assert_problem(response, 422)["errors"]


def test_only_owners_and_admins_create_brands(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    admin = invite_user(owner, agency_role="admin")
    member = invite_user(owner, agency_role="member")
    assert _create(client, admin, name="By admin").status_code == 201
    assert_problem(client.post("/v1/brands", json={"name": "x"}, headers=member.headers), 403)


def test_another_agencys_brand_is_404_on_every_verb(client, make_agency):
    owner = make_agency(brands=0)
    other = make_agency(brands=1)
    brand_id = other.brands[0]
    for method, path, body in [
        ("get", f"/v1/brands/{brand_id}", None),
        ("patch", f"/v1/brands/{brand_id}", {"name": "stolen"}),
        ("delete", f"/v1/brands/{brand_id}", None),
        ("post", f"/v1/brands/{brand_id}/archive", None),
        ("post", f"/v1/brands/{brand_id}/unarchive", None),
        ("get", f"/v1/brands/{brand_id}/export", None),
    ]:
        response = getattr(client, method)(path, json=body, headers=owner.headers)
        assert_problem(response, 404)
    assert (
        client.get(f"/v1/brands/{brand_id}", headers=other.headers).get_json()["name"] != "stolen"
    )


# -- archive --------------------------------------------------------------------------------------


def test_archive_and_unarchive_keep_everything(client, make_agency, invite_user, database):
    owner = make_agency(brands=1)
    brand_id = owner.brands[0]
    manager = invite_user(owner, brand_id=brand_id, brand_role="manager")
    with owner_connection(database) as connection:
        insert_brand_rows(
            connection, agency_id=owner.agency_id, brand_id=brand_id, user_id=owner.user_id
        )
        before = count_brand_rows(connection, brand_id)

    archived = client.post(f"/v1/brands/{brand_id}/archive", headers=owner.headers)
    assert archived.status_code == 200
    assert archived.get_json()["status"] == "archived"
    assert archived.get_json()["archived_at"] is not None
    with owner_connection(database) as connection:
        assert _without_audit(count_brand_rows(connection, brand_id)) == _without_audit(before)

    active = client.get("/v1/brands?status=active", headers=owner.headers).get_json()["items"]
    assert active == []
    gone = client.get("/v1/brands?status=archived", headers=owner.headers).get_json()["items"]
    assert [b["id"] for b in gone] == [brand_id]
    # The manager still reaches it (to read, or to export it).
    assert client.get(f"/v1/brands/{brand_id}", headers=manager.headers).status_code == 200
    assert_problem(client.post(f"/v1/brands/{brand_id}/archive", headers=manager.headers), 403)

    back = client.post(f"/v1/brands/{brand_id}/unarchive", headers=owner.headers).get_json()
    assert back["status"] == "active" and back["archived_at"] is None
    with owner_connection(database) as connection:
        after = count_brand_rows(connection, brand_id)
    assert _without_audit(after) == _without_audit(before)
    assert after["audit_events"] == before["audit_events"] + 2  # archived, unarchived


def _without_audit(counts: dict[str, int]) -> dict[str, int]:
    return {table: n for table, n in counts.items() if table != "audit_events"}


# -- offboarding ----------------------------------------------------------------------------------


def test_offboarding_deletes_every_row_the_brand_owns_and_nothing_else(
    client, make_agency, invite_user, database
):
    owner = make_agency(brands=2)
    gone, kept = owner.brands
    other = make_agency(brands=1)
    invite_user(owner, brand_id=gone, brand_role="client")
    with owner_connection(database) as connection:
        for agency, brand_id in [(owner, gone), (owner, kept), (other, other.brands[0])]:
            insert_brand_rows(
                connection, agency_id=agency.agency_id, brand_id=brand_id, user_id=agency.user_id
            )
        kept_before = count_brand_rows(connection, kept)
        other_before = count_brand_rows(connection, other.brands[0])
        assert all(count_brand_rows(connection, gone).values())

    assert client.delete(f"/v1/brands/{gone}", headers=owner.headers).status_code == 204

    assert_problem(client.get(f"/v1/brands/{gone}", headers=owner.headers), 404)
    with owner_connection(database) as connection:
        assert count_brand_rows(connection, gone) == dict.fromkeys(
            (t.name for t in brand_tables()), 0
        )
        assert count_brand_rows(connection, kept) == kept_before
        assert count_brand_rows(connection, other.brands[0]) == other_before
    assert client.get(f"/v1/brands/{kept}", headers=owner.headers).status_code == 200


def test_offboarding_takes_the_brand_off_limited_api_keys(client, make_agency):
    owner = make_agency(brands=2)
    gone, kept = owner.brands
    both = client.post(
        "/v1/api-keys", json={"name": "both", "brand_ids": [gone, kept]}, headers=owner.headers
    ).get_json()
    only = client.post(
        "/v1/api-keys", json={"name": "only", "brand_ids": [gone]}, headers=owner.headers
    ).get_json()
    assert client.delete(f"/v1/brands/{gone}", headers=owner.headers).status_code == 204
    both_now = client.get(f"/v1/api-keys/{both['id']}", headers=owner.headers).get_json()
    assert both_now["brand_ids"] == [kept]
    only_now = client.get(f"/v1/api-keys/{only['id']}", headers=owner.headers).get_json()
    # A key limited to no brand left can do nothing: it is revoked, never widened.
    assert only_now["revoked_at"] is not None
    assert_problem(client.get("/v1/brands", headers={"X-API-Key": only["key"]}), 401)


def test_only_owners_and_admins_offboard(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    manager = invite_user(owner, brand_id=owner.brands[0], brand_role="manager")
    assert_problem(client.delete(f"/v1/brands/{owner.brands[0]}", headers=manager.headers), 403)
    assert client.get(f"/v1/brands/{owner.brands[0]}", headers=owner.headers).status_code == 200


# -- export ---------------------------------------------------------------------------------------

SECRET_WORDS = ("password_hash", "key_hash", "token_hash", "credentials")


def test_export_returns_everything_the_brand_owns_without_secrets(
    client, make_agency, invite_user, database
):
    owner = make_agency(brands=2)
    brand_id, sibling = owner.brands
    invite_user(owner, brand_id=brand_id, brand_role="client")
    client.post(
        "/v1/invitations",
        json={"email": "pending@example.com", "brand_id": brand_id, "brand_role": "approver"},
        headers=owner.headers,
    )
    with owner_connection(database) as connection:
        mine = insert_brand_rows(
            connection, agency_id=owner.agency_id, brand_id=brand_id, user_id=owner.user_id
        )
        insert_brand_rows(
            connection, agency_id=owner.agency_id, brand_id=sibling, user_id=owner.user_id
        )
        expected = count_brand_rows(connection, brand_id)

    response = client.get(f"/v1/brands/{brand_id}/export", headers=owner.headers)
    assert response.status_code == 200, response.get_json()
    export = response.get_json()
    assert export["brand"]["id"] == brand_id
    assert set(export["tables"]) == {t.name for t in brand_tables()}
    for table in brand_tables():
        rows = export["tables"][table.name]
        # Counted before the export, which itself adds an audit event.
        assert len(rows) >= expected[table.name], table.name
        assert all(row["brand_id"] == brand_id for row in rows)
        key = table.primary_key.columns[0].name
        assert mine[table.name][key] in {row[key] for row in rows}
    text = json.dumps(export)
    for word in SECRET_WORDS:
        assert word not in text


def test_export_needs_a_manager(client, make_agency, invite_user):
    owner = make_agency(brands=1)
    brand_id = owner.brands[0]
    manager = invite_user(owner, brand_id=brand_id, brand_role="manager")
    editor = invite_user(owner, brand_id=brand_id, brand_role="editor")
    assert client.get(f"/v1/brands/{brand_id}/export", headers=manager.headers).status_code == 200
    assert_problem(client.get(f"/v1/brands/{brand_id}/export", headers=editor.headers), 403)
