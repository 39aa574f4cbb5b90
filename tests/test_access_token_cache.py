"""Verified access tokens are remembered per process, but expiry is checked on every use."""

import time

from app.auth import tokens


def test_cached_token_still_expires(app, client, make_agency, monkeypatch):
    owner = make_agency("Cache", brands=1)
    assert client.get("/v1/me", headers=owner.headers).status_code == 200  # now cached

    later = time.time() + app.config["ACCESS_TOKEN_TTL_SECONDS"] + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    response = client.get("/v1/me", headers=owner.headers)
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"


def test_tampered_token_is_not_served_from_cache(client, make_agency):
    owner = make_agency("Tamper", brands=0)
    assert client.get("/v1/me", headers=owner.headers).status_code == 200
    tampered = owner.token[:-2] + ("AA" if not owner.token.endswith("AA") else "BB")
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
