from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import AgencyScoped, Base, Timestamps


class Invitation(AgencyScoped, Timestamps, Base):
    """An invitation to join the agency (agency_role) or one brand (brand_id + brand_role)."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("invitation"))
    brand_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("brands.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    agency_role: Mapped[str | None] = mapped_column(String(20))
    brand_role: Mapped[str | None] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"secret": True})
    invited_by_user_id: Mapped[str | None] = mapped_column(String(40))
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
