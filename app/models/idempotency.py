from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import Base, Timestamps


class IdempotencyRecord(Timestamps, Base):
    """The stored outcome of a create sent with `Idempotency-Key`, replayed for 24 h.

    `scope` names the caller (a digest of agency, principal kind and id), or `anonymous` for
    sign-up (which has no agency yet); `agency_id` is the tenant, for RLS. `key` is a
    SHA-256 of the client's Idempotency-Key and `response_body` is encrypted with a key derived
    from it (see app.api.idempotency): responses may carry secrets shown once.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("idempotency_record")
    )
    agency_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1000))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any] | None]
    expires_at: Mapped[datetime]
