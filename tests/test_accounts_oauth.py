"""OAuth connect flows (Mastodon, LinkedIn, X, Facebook, Instagram) against local fakes of each
network's documented endpoints; state single-use, expiring and bound to brand and caller; token
refresh telling a passing outage from a dead token; revoke and reconnect."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from app.models.base import utcnow
from tests.accounts_helpers import (
    REDIRECT_URI,
    Networks,
    connect_oauth,
    raw_account_row,
    set_account_columns,
)


@pytest.fixture
def networks(app, monkeypatch):
    fakes = Networks(app, monkeypatch)
    yield fakes
    fakes.stop()


def test_mastodon_oauth_connect_registers_app_once_and_uses_pkce(client, make_agency, networks):
    owner = make_agency("Masto")
    brand = owner.brands[0]
    started = client.post(
        f"/v1/brands/{brand}/accounts/connect",
        json={"network": "mastodon", "instance_url": networks.mastodon.url + "/"},
        headers=owner.headers,
    )
    assert started.status_code == 200, started.get_json()
    url = started.get_json()["authorization_url"]
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{networks.mastodon.url}/oauth/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["redirect_uri"] == [REDIRECT_URI]

    code, state = networks.mastodon.approve(url)
    done = client.post(
        f"/v1/brands/{brand}/accounts/callback",
        json={"code": code, "state": state},
        headers=owner.headers,
    )
    assert done.status_code == 200, done.get_json()
    [account] = done.get_json()["items"]
    assert account["network"] == "mastodon"
    assert account["handle"] == "@user-1@127.0.0.1"
    assert account["health"] == "active"
    assert account["instance_url"] == networks.mastodon.url
    body = done.get_data(as_text=True)
    for token in networks.mastodon.access_tokens:
        assert token not in body
    assert "credentials" not in body

    # A second brand-mate connection on the same instance reuses the registration.
    networks.mastodon.user = "user-2"
    again, _ = connect_oauth(
        client, owner, brand, networks, "mastodon", instance_url=networks.mastodon.url
    )
    assert again.status_code == 200, again.get_json()
    assert len(networks.mastodon.hits("/api/v1/apps")) == 1
    listed = client.get(f"/v1/brands/{brand}/accounts?network=mastodon", headers=owner.headers)
    assert len(listed.get_json()["items"]) == 2

    # Disconnecting revokes our token at the instance (with our app's client credentials).
    tokens_before = set(networks.mastodon.access_tokens)
    gone = client.delete(f"/v1/brands/{brand}/accounts/{account['id']}", headers=owner.headers)
    assert gone.status_code == 204
    assert len(networks.mastodon.revoked) == 1
    assert networks.mastodon.revoked[0] in tokens_before


def test_state_is_single_use(client, make_agency, networks):
    owner = make_agency("Replay")
    brand = owner.brands[0]
    done, state = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200, done.get_json()
    replay = client.post(
        f"/v1/brands/{brand}/accounts/callback",
        json={"code": "whatever", "state": state},
        headers=owner.headers,
    )
    assert replay.status_code == 409
    assert replay.content_type == "application/problem+json"
    assert "already used" in replay.get_json()["detail"]


def test_expired_state_is_refused(client, make_agency, networks, monkeypatch, app):
    from app.services import maintenance

    owner = make_agency("Expiry")
    brand = owner.brands[0]
    monkeypatch.setitem(app.config, "OAUTH_STATE_TTL_SECONDS", -1)
    done, _ = connect_oauth(client, owner, brand, networks, "linkedin")
    assert done.status_code == 422
    assert done.get_json()["errors"] == {"state": ["Expired."]}
    assert networks.linkedin.hits("/oauth/v2/accessToken") == []
    # Housekeeping forgets it a day later.
    with app.app_context():
        assert maintenance.purge_expired_oauth_states() == 0
        assert maintenance.purge_expired_oauth_states(now=utcnow() + timedelta(days=2)) == 1


def test_state_is_bound_to_brand_and_caller(client, make_agency, invite_user, networks):
    owner = make_agency("Bound", brands=2)
    first, second = owner.brands
    started = client.post(
        f"/v1/brands/{first}/accounts/connect", json={"network": "x"}, headers=owner.headers
    )
    code, state = networks.x.approve(started.get_json()["authorization_url"])
    other_brand = client.post(
        f"/v1/brands/{second}/accounts/callback",
        json={"code": code, "state": state},
        headers=owner.headers,
    )
    assert other_brand.status_code == 422
    manager = invite_user(owner, brand_id=first, brand_role="manager")
    other_person = client.post(
        f"/v1/brands/{first}/accounts/callback",
        json={"code": code, "state": state},
        headers=manager.headers,
    )
    assert other_person.status_code == 422
    unknown = client.post(
        f"/v1/brands/{first}/accounts/callback",
        json={"code": code, "state": "nope"},
        headers=owner.headers,
    )
    assert unknown.status_code == 422
    # None of that burned the state: its owner can still finish.
    finished = client.post(
        f"/v1/brands/{first}/accounts/callback",
        json={"code": code, "state": state},
        headers=owner.headers,
    )
    assert finished.status_code == 200, finished.get_json()


def test_denied_at_the_network_is_a_clear_422(client, make_agency, networks):
    owner = make_agency("Denied")
    brand = owner.brands[0]
    started = client.post(
        f"/v1/brands/{brand}/accounts/connect", json={"network": "x"}, headers=owner.headers
    )
    state = parse_qs(urlsplit(started.get_json()["authorization_url"]).query)["state"][0]
    denied = client.post(
        f"/v1/brands/{brand}/accounts/callback",
        json={"state": state, "error": "access_denied"},
        headers=owner.headers,
    )
    assert denied.status_code == 422
    assert "access_denied" in denied.get_json()["detail"]


def test_linkedin_member_and_organizations(client, make_agency, networks):
    owner = make_agency("Linked")
    brand = owner.brands[0]
    member, _ = connect_oauth(client, owner, brand, networks, "linkedin")
    assert member.status_code == 200, member.get_json()
    [account] = member.get_json()["items"]
    assert account["external_id"] == "urn:li:person:sub-user-1"
    assert account["account_kind"] == "member"
    assert account["token_expires_at"] is not None
    member_token = next(iter(networks.linkedin.access_tokens))

    pages, _ = connect_oauth(
        client, owner, brand, networks, "linkedin", account_kind="organization"
    )
    assert pages.status_code == 200, pages.get_json()
    names = sorted(a["display_name"] for a in pages.get_json()["items"])
    assert names == ["Café Lumière", "Lumière Group"]
    assert {a["account_kind"] for a in pages.get_json()["items"]} == {"organization"}

    gone = client.delete(f"/v1/brands/{brand}/accounts/{account['id']}", headers=owner.headers)
    assert gone.status_code == 204
    assert networks.linkedin.revoked == [member_token]

    # Reconnecting one page of a grant that reaches two reconnects that page only.
    page = pages.get_json()["items"][1]
    again = client.post(
        f"/v1/brands/{brand}/accounts/{page['id']}/reconnect", json={}, headers=owner.headers
    )
    authorization_url = again.get_json()["authorization"]["authorization_url"]
    assert "r_organization_admin" in authorization_url
    code, state = networks.linkedin.approve(authorization_url)
    back = client.post(
        f"/v1/brands/{brand}/accounts/callback",
        json={"code": code, "state": state},
        headers=owner.headers,
    )
    assert back.status_code == 200, back.get_json()
    assert [a["id"] for a in back.get_json()["items"]] == [page["id"]]


def test_x_connect_refresh_revoke_and_reconnect(client, make_agency, networks, app):
    from workers.jobs.accounts import refresh_expiring_tokens

    owner = make_agency("Xco")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200, done.get_json()
    [account] = done.get_json()["items"]
    assert account["handle"] == "@user-1"
    first_refresh = next(iter(networks.x.refresh_tokens))

    # Within the refresh margin: the job refreshes, and X rotates the refresh token.
    with app.app_context():
        outcome = refresh_expiring_tokens()
    assert outcome == {"refreshed": 1}
    assert first_refresh not in networks.x.refresh_tokens
    refreshed = client.get(f"/v1/brands/{brand}/accounts/{account['id']}", headers=owner.headers)
    assert refreshed.get_json()["health"] == "active"
    assert refreshed.get_json()["last_refreshed_at"] is not None

    # Disconnect revokes the grant at X and forgets the credentials, keeping the row.
    gone = client.delete(f"/v1/brands/{brand}/accounts/{account['id']}", headers=owner.headers)
    assert gone.status_code == 204
    assert len(networks.x.revoked) == 1 and networks.x.revoked[0].startswith("rt-")
    after = client.get(f"/v1/brands/{brand}/accounts/{account['id']}", headers=owner.headers)
    assert after.get_json()["health"] == "revoked"
    assert raw_account_row(app, account["id"])["credentials_encrypted"] is None

    # Reconnect goes through OAuth again and lands on the same row.
    again = client.post(
        f"/v1/brands/{brand}/accounts/{account['id']}/reconnect", json={}, headers=owner.headers
    )
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["account"] is None
    code, state = networks.x.approve(again.get_json()["authorization"]["authorization_url"])
    back = client.post(
        f"/v1/brands/{brand}/accounts/callback",
        json={"code": code, "state": state},
        headers=owner.headers,
    )
    assert back.status_code == 200, back.get_json()
    assert back.get_json()["items"][0]["id"] == account["id"]
    assert back.get_json()["items"][0]["health"] == "active"

    # Reconnecting as somebody else is refused, and the account keeps its credentials.
    networks.x.user = "someone-else"
    other = client.post(
        f"/v1/brands/{brand}/accounts/{account['id']}/reconnect", json={}, headers=owner.headers
    )
    code, state = networks.x.approve(other.get_json()["authorization"]["authorization_url"])
    wrong = client.post(
        f"/v1/brands/{brand}/accounts/callback",
        json={"code": code, "state": state},
        headers=owner.headers,
    )
    assert wrong.status_code == 409


def test_refresh_tells_transient_failures_from_dead_tokens(
    client, make_agency, networks, app, monkeypatch
):
    from workers.jobs.accounts import refresh_expiring_tokens

    owner = make_agency("Refresh")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    account_id = done.get_json()["items"][0]["id"]
    url = f"/v1/brands/{brand}/accounts/{account_id}"

    # A timeout is a passing outage too.
    with monkeypatch.context() as patch:
        patch.setitem(app.config, "NETWORK_HTTP_TIMEOUT_SECONDS", 0.3)
        networks.x.delay_next("/2/oauth2/token", 1.5)
        with app.app_context():
            assert refresh_expiring_tokens() == {"transient_failure": 1}
    kept = client.get(url, headers=owner.headers).get_json()
    assert kept["health"] == "active" and "in time" in kept["last_error"]

    for status in (503, 429):
        networks.x.fail_next("/2/oauth2/token", status, {"title": "Service Unavailable"})
        with app.app_context():
            assert refresh_expiring_tokens() == {"transient_failure": 1}
        kept = client.get(url, headers=owner.headers).get_json()
        assert kept["health"] == "active"
        assert str(status) in kept["last_error"]

    networks.x.fail_next("/2/oauth2/token", 400, {"error": "invalid_grant"})
    with app.app_context():
        assert refresh_expiring_tokens() == {"needs_reconnect": 1}
    dead = client.get(url, headers=owner.headers).get_json()
    assert dead["health"] == "needs_reconnect"
    assert "invalid_grant" in dead["last_error"]
    # A dead account is not retried by later runs.
    with app.app_context():
        assert refresh_expiring_tokens() == {}


def test_non_refreshable_token_turns_expiring_then_needs_reconnect(
    client, make_agency, networks, app
):
    from app.services import token_refresh

    owner = make_agency("Expiring")
    brand = owner.brands[0]
    networks.linkedin.issues_refresh = False  # LinkedIn grants refresh tokens to partners only
    done, _ = connect_oauth(client, owner, brand, networks, "linkedin")
    account_id = done.get_json()["items"][0]["id"]
    set_account_columns(app, account_id, token_expires_at=utcnow() + timedelta(hours=3))
    with app.app_context():
        assert token_refresh.refresh_expiring_tokens() == {"expiring": 1}
    url = f"/v1/brands/{brand}/accounts/{account_id}"
    assert client.get(url, headers=owner.headers).get_json()["health"] == "expiring"
    with app.app_context():
        later = utcnow() + timedelta(hours=4)
        assert token_refresh.refresh_expiring_tokens(now=later) == {"needs_reconnect": 1}
    assert client.get(url, headers=owner.headers).get_json()["health"] == "needs_reconnect"


def test_facebook_pages_and_instagram_business(client, make_agency, networks):
    owner = make_agency("Meta")
    brand = owner.brands[0]
    pages, _ = connect_oauth(client, owner, brand, networks, "facebook")
    assert pages.status_code == 200, pages.get_json()
    assert sorted(a["external_id"] for a in pages.get_json()["items"]) == ["1001", "1002"]
    insta, _ = connect_oauth(client, owner, brand, networks, "instagram")
    assert insta.status_code == 200, insta.get_json()
    [ig] = insta.get_json()["items"]
    assert ig["handle"] == "@cafelumiere"
    assert ig["network"] == "instagram"
    # The exchange went through the long-lived token (fb_exchange_token).
    grants = [r.params.get("grant_type") for r in networks.meta.hits("/oauth/access_token")]
    assert grants.count("fb_exchange_token") == 2


def test_mastodon_existing_token(app, client, make_agency, networks):
    owner = make_agency("Token")
    brand = owner.brands[0]
    token = networks.mastodon.personal_token("alice")
    created = client.post(
        f"/v1/brands/{brand}/accounts",
        json={
            "network": "mastodon",
            "instance_url": networks.mastodon.url,
            "access_token": token,
            "label": "Main",
            "color": "#112233",
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["handle"] == "@alice@127.0.0.1"
    # The instance's own limits are kept for the content rules.
    settings = raw_account_row(app, body["id"])["settings"]
    settings = json.loads(settings) if isinstance(settings, str) else settings
    assert settings["max_characters"] == 1000 and settings["label"] == "Main"
    assert (body["label"], body["color"]) == ("Main", "#112233")
    assert token not in created.get_data(as_text=True)

    refused = client.post(
        f"/v1/brands/{brand}/accounts",
        json={
            "network": "mastodon",
            "instance_url": networks.mastodon.url,
            "access_token": "not-a-token",
        },
        headers=owner.headers,
    )
    assert refused.status_code == 422
    assert "access_token" in refused.get_json()["errors"]

    down = client.post(
        f"/v1/brands/{brand}/accounts",
        json={"network": "mastodon", "instance_url": networks.mastodon.url, "access_token": token},
        headers=owner.headers,
    )
    # Same account again: reconnected in place, not duplicated.
    assert down.status_code == 201 and down.get_json()["id"] == body["id"]
    networks.mastodon.fail_next("/api/v1/accounts/verify_credentials", 502)
    unavailable = client.post(
        f"/v1/brands/{brand}/accounts",
        json={"network": "mastodon", "instance_url": networks.mastodon.url, "access_token": token},
        headers=owner.headers,
    )
    assert unavailable.status_code == 502
    assert unavailable.content_type == "application/problem+json"


def test_patch_display_settings_with_if_match(client, make_agency, networks):
    owner = make_agency("Patch")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    url = f"/v1/brands/{brand}/accounts/{done.get_json()['items'][0]['id']}"
    etag = client.get(url, headers=owner.headers).headers["ETag"]
    changed = client.patch(
        url,
        json={"label": "Brand voice", "color": "#AA00FF"},
        headers={**owner.headers, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["label"] == "Brand voice"
    stale = client.patch(url, json={"label": "x"}, headers={**owner.headers, "If-Match": etag})
    assert stale.status_code == 412


def test_roles(client, make_agency, invite_user, networks):
    owner = make_agency("Roles")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    url = f"/v1/brands/{brand}/accounts"
    editor = invite_user(owner, brand_id=brand, brand_role="editor")
    customer = invite_user(owner, brand_id=brand, brand_role="client")
    assert client.get(url, headers=editor.headers).status_code == 200
    assert (
        client.post(f"{url}/connect", json={"network": "x"}, headers=editor.headers).status_code
        == 403
    )
    assert client.get(url, headers=customer.headers).status_code == 403
    other = make_agency("Other")
    account_id = done.get_json()["items"][0]["id"]
    assert client.get(f"{url}/{account_id}", headers=other.headers).status_code == 404


def test_no_credentials_in_logs_or_export(client, make_agency, networks, caplog):
    caplog.set_level(logging.DEBUG)
    owner = make_agency("Quiet")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200
    exported = client.get(f"/v1/brands/{brand}/export", headers=owner.headers)
    assert exported.status_code == 200
    secrets = [*networks.x.access_tokens, *networks.x.refresh_tokens]
    assert secrets
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in exported.get_data(as_text=True)
    assert "credentials_encrypted" not in exported.get_data(as_text=True)
    assert "verifier_encrypted" not in exported.get_data(as_text=True)


def test_unconfigured_network_is_a_clear_422(client, make_agency, app, monkeypatch):
    monkeypatch.setitem(app.config, "LINKEDIN_CLIENT_ID", "")
    owner = make_agency("Unset")
    response = client.post(
        f"/v1/brands/{owner.brands[0]}/accounts/connect",
        json={"network": "linkedin"},
        headers=owner.headers,
    )
    assert response.status_code == 422
    assert "LINKEDIN_CLIENT_ID" in response.get_json()["detail"]
