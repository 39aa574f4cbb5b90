from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import Base, BrandScoped, Timestamps


class Network(StrEnum):
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    LINKEDIN = "linkedin"
    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"


class AccountHealth(StrEnum):
    ACTIVE = "active"
    EXPIRING = "expiring"
    NEEDS_RECONNECT = "needs_reconnect"
    REVOKED = "revoked"


class SocialAccount(BrandScoped, Timestamps, Base):
    """A brand's connected account on one network. Credentials are encrypted at rest."""

    __tablename__ = "social_accounts"
    __table_args__ = (UniqueConstraint("brand_id", "network", "external_id"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("social_account")
    )
    network: Mapped[str] = mapped_column(String(20))
    # The account's id on the network (DID on Bluesky, numeric id on Mastodon, URN on LinkedIn).
    external_id: Mapped[str] = mapped_column(String(255))
    handle: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    # Mastodon instance or Bluesky PDS base URL; None for single-host networks.
    instance_url: Mapped[str | None] = mapped_column(String(500))
    # e.g. LinkedIn "member" or "organization", Facebook "page".
    account_kind: Mapped[str | None] = mapped_column(String(40))
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, info={"secret": True})
    scopes: Mapped[list[str] | None]
    token_expires_at: Mapped[datetime | None]
    health: Mapped[str] = mapped_column(String(20), default=AccountHealth.ACTIVE.value)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_refreshed_at: Mapped[datetime | None]
    connected_by_user_id: Mapped[str | None] = mapped_column(String(40))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime | None]
    # Bumped on every change a person makes; the ETag (If-Match) is built from it.
    version: Mapped[int] = mapped_column(Integer, default=1)
    disconnected_at: Mapped[datetime | None]
    # The network asked us to slow down (a 429 on a publish): the account's deliveries wait
    # until then, and the other accounts' go on (app/services/publishing_outcomes.py).
    rate_limited_until: Mapped[datetime | None]

    __label__ = "social account"


class OAuthState(BrandScoped, Timestamps, Base):
    """One OAuth authorization in flight: bound to a brand and a caller, single-use, expiring.

    The `state` itself is only kept as a digest; the PKCE verifier is encrypted like
    credentials, since whoever holds it (and the code) could finish the exchange.
    """

    __tablename__ = "oauth_states"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("oauth_state"))
    state_digest: Mapped[str] = mapped_column(String(64), unique=True)
    network: Mapped[str] = mapped_column(String(20))
    # Who started it ("user" or "api_key", and the id): only they may finish it.
    principal_kind: Mapped[str] = mapped_column(String(20))
    principal_id: Mapped[str] = mapped_column(String(40))
    instance_url: Mapped[str | None] = mapped_column(String(500))
    account_kind: Mapped[str | None] = mapped_column(String(40))
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    # Set when the authorization reconnects an existing account.
    account_id: Mapped[str | None] = mapped_column(String(40))
    verifier_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, info={"secret": True})
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class MastodonApp(Timestamps, Base):
    """Our OAuth app on one Mastodon instance (POST /api/v1/apps), registered once and reused.

    Not tenant data: every brand connecting accounts on an instance shares the registration.
    """

    __tablename__ = "mastodon_apps"
    __table_args__ = (UniqueConstraint("instance_url", "redirect_uri", "scopes"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_url: Mapped[str] = mapped_column(String(500))
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    scopes: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary, info={"secret": True})
