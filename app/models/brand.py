from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import AgencyScoped, Base, BrandScoped, Timestamps


class BrandRole(StrEnum):
    MANAGER = "manager"
    EDITOR = "editor"
    APPROVER = "approver"
    CLIENT = "client"


class ApprovalMode(StrEnum):
    NONE = "none"
    INTERNAL = "internal"
    INTERNAL_AND_CLIENT = "internal_and_client"


class BrandStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Brand(AgencyScoped, Timestamps, Base):
    """The tenant: one client brand of an agency."""

    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("agency_id", "slug"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("brand"))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    approval_mode: Mapped[str] = mapped_column(String(32), default=ApprovalMode.NONE.value)
    branding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=BrandStatus.ACTIVE.value)
    archived_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    # Bumped on every write; the ETag of the brand, and SQLAlchemy's guard against lost updates.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class BrandMembership(BrandScoped, Timestamps, Base):
    __tablename__ = "brand_memberships"
    __table_args__ = (UniqueConstraint("brand_id", "user_id"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("brand_membership")
    )
    user_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(20))
