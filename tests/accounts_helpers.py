"""Helpers shared by the social-account tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from app.extensions import db
from tests.fakes.oauth_networks import FakeLinkedIn, FakeMastodon, FakeMeta, FakeX


def raw_account_row(app: Any, account_id: str) -> dict[str, Any]:
    """The stored row, read past the API (and its tenant scope) as the tests' owner would."""
    from app import tenancy

    with app.app_context(), tenancy.system_scope():
        row = (
            db.session.execute(
                text("SELECT * FROM social_accounts WHERE id = :id"), {"id": account_id}
            )
            .mappings()
            .one()
        )
        result = dict(row)
        db.session.rollback()
    return result


def set_account_columns(app: Any, account_id: str, **values: Any) -> None:
    from app import tenancy
    from app.models import SocialAccount

    with app.app_context(), tenancy.system_scope():
        account = db.session.get(SocialAccount, account_id)
        for name, value in values.items():
            setattr(account, name, value)
        db.session.commit()


REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"


class Networks:
    def __init__(self, app, monkeypatch) -> None:
        cfg = app.config
        self.mastodon = FakeMastodon().start()
        linkedin_client = (cfg["LINKEDIN_CLIENT_ID"], cfg["LINKEDIN_CLIENT_SECRET"])
        self.linkedin = FakeLinkedIn(*linkedin_client).start()
        self.x = FakeX(cfg["X_CLIENT_ID"], cfg["X_CLIENT_SECRET"]).start()
        self.meta = FakeMeta(cfg["META_APP_ID"], cfg["META_APP_SECRET"]).start()
        for key, value in {
            "OAUTH_REDIRECT_URI": REDIRECT_URI,
            "LINKEDIN_OAUTH_URL": f"{self.linkedin.url}/oauth/v2",
            "LINKEDIN_API_URL": self.linkedin.url,
            "X_AUTHORIZE_URL": f"{self.x.url}/i/oauth2/authorize",
            "X_API_URL": self.x.url,
            "META_AUTHORIZE_URL": f"{self.meta.url}/dialog/oauth",
            "META_GRAPH_URL": self.meta.url,
        }.items():
            monkeypatch.setitem(cfg, key, value)

    def of(self, network: str):
        return {
            "mastodon": self.mastodon,
            "linkedin": self.linkedin,
            "x": self.x,
            "facebook": self.meta,
            "instagram": self.meta,
        }[network]

    def stop(self) -> None:
        for fake in (self.mastodon, self.linkedin, self.x, self.meta):
            fake.stop()


def connect_oauth(client, owner, brand_id, networks, network, **extra):
    """Start, approve at the fake, and finish one OAuth connection; returns the callback."""
    started = client.post(
        f"/v1/brands/{brand_id}/accounts/connect",
        json={"network": network, **extra},
        headers=owner.headers,
    )
    assert started.status_code == 200, started.get_json()
    code, state = networks.of(network).approve(started.get_json()["authorization_url"])
    return client.post(
        f"/v1/brands/{brand_id}/accounts/callback",
        json={"code": code, "state": state},
        headers=owner.headers,
    ), state
