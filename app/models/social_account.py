from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import LargeBinary, String, Text, UniqueConstraint
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
    credentials_encrypted: Mapped[bytes | None] = mapped_column(
        LargeBinary, info={"secret": True}
    )
    scopes: Mapped[list[str] | None]
    token_expires_at: Mapped[datetime | None]
    health: Mapped[str] = mapped_column(String(20), default=AccountHealth.ACTIVE.value)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_refreshed_at: Mapped[datetime | None]
    connected_by_user_id: Mapped[str | None] = mapped_column(String(40))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime | None]
