"""The README's walk-through, end to end: sign up → token → brand → invite a client."""

from tests.conftest import invitation_token


def test_signup_token_brand_invite_client(client, make_agency):
    owner = make_agency("Smoke", brands=0)
    token = client.post("/v1/auth/token", json={"email": owner.email, "password": owner.password})
    assert token.status_code == 200, token.get_json()
    headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}

    brand = client.post(
        "/v1/brands",
        json={
            "name": "Café Lumière",
            "timezone": "Europe/Paris",
            "approval_mode": "internal_and_client",
        },
        headers=headers,
    )
    assert brand.status_code == 201, brand.get_json()
    brand_id = brand.get_json()["id"]
    assert brand_id.startswith("brd_")
    assert brand.get_json()["slug"] == "cafe-lumiere"

    invite = client.post(
        "/v1/invitations",
        json={"email": "client@example.com", "brand_id": brand_id, "brand_role": "client"},
        headers=headers,
    )
    assert invite.status_code == 201, invite.get_json()
    accepted = client.post(
        "/v1/invitations/accept",
        json={
            "token": invitation_token(client, "client@example.com"),
            "name": "Client",
            "password": "client-pass-123",
        },
    )
    assert accepted.status_code == 200, accepted.get_json()
    client_headers = {"Authorization": f"Bearer {accepted.get_json()['access_token']}"}

    me = client.get("/v1/me", headers=client_headers).get_json()
    assert me["access"]["agency_role"] is None
    assert me["access"]["brand_roles"] == {brand_id: "client"}
    listed = client.get("/v1/brands", headers=client_headers).get_json()
    assert [b["id"] for b in listed["items"]] == [brand_id]
    assert client.get(f"/v1/brands/{brand_id}/members", headers=client_headers).status_code == 403
