from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import AgencyScoped, Base, Timestamps


class ApiKey(AgencyScoped, Timestamps, Base):
    """An agency-level key for scripts. Only a SHA-256 of the secret is kept: the key is 256
    random bits, so a slow hash buys nothing and would cost every request."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("api_key"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(24))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"secret": True})
    # None: every brand of the agency; otherwise only these brand ids.
    brand_ids: Mapped[list[str] | None]
    created_by_user_id: Mapped[str | None] = mapped_column(String(40))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
