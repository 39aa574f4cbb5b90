from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import AgencyScoped, Base, Timestamps


class AgencyRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Agency(Timestamps, Base):
    """The paying customer. Its own id is its tenant key (RLS filters `agencies.id`)."""

    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("agency"))
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(40), default="trial")
    billing_status: Mapped[str] = mapped_column(String(40), default="trialing")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime | None]


class AgencyMembership(AgencyScoped, Timestamps, Base):
    __tablename__ = "agency_memberships"
    __table_args__ = (UniqueConstraint("agency_id", "user_id"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("agency_membership")
    )
    user_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(20))
