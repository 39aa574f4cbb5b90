"""What DELETE removed is a 404 afterwards (what DELETE only revokes stays readable: API keys
and invitations keep their history, with `revoked_at` / status `revoked`)."""

from __future__ import annotations


def test_deleted_brand_and_memberships_are_404(client, make_agency, invite_user):
    owner = make_agency(brands=2)
    brand, other_brand = owner.brands
    member = invite_user(owner, agency_role="member")
    members = client.get("/v1/agency/members", headers=owner.headers).get_json()["items"]
    agency_membership = next(m["id"] for m in members if m["user_id"] == member.user_id)
    added = client.post(
        f"/v1/brands/{other_brand}/members",
        json={"user_id": member.user_id, "role": "editor"},
        headers=owner.headers,
    )
    assert added.status_code == 201, added.get_json()
    brand_membership = f"/v1/brands/{other_brand}/members/{added.get_json()['id']}"

    agency_member = f"/v1/agency/members/{agency_membership}"
    for path in (brand_membership, agency_member, f"/v1/brands/{brand}"):
        assert client.get(path, headers=owner.headers).status_code == 200, path
        assert client.delete(path, headers=owner.headers).status_code == 204, path
        again = client.get(path, headers=owner.headers)
        assert again.status_code == 404, path
        assert again.mimetype == "application/problem+json"
        assert client.delete(path, headers=owner.headers).status_code == 404, path
