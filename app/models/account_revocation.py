from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import AgencyScoped, Base, Timestamps


class AccountRevocation(AgencyScoped, Timestamps, Base):
    """The credentials of an offboarded brand's account, kept only until the network has
    revoked them (app/services/account_revocations.py).

    Offboarding deletes the account with the rest of the brand, in one transaction; this row,
    written in that same transaction, is what lets a job revoke the tokens at the network
    afterwards, and try again if the network is down. It belongs to the agency, not to the
    brand (which no longer exists), and is deleted once revoked or given up on.
    """

    __tablename__ = "account_revocations"
    __table_args__ = (
        # The sweep that enqueues again what Redis lost looks for overdue rows.
        Index("ix_account_revocations_next_attempt_at", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("account_revocation")
    )
    # The deleted account and brand, for the audit trail (not foreign keys: both are gone).
    account_id: Mapped[str] = mapped_column(String(40))
    offboarded_brand_id: Mapped[str] = mapped_column(String(40))
    network: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str] = mapped_column(String(255))
    instance_url: Mapped[str | None] = mapped_column(String(500))
    # Copied as they were stored (encrypted with the credentials keys), never decrypted but
    # to revoke them.
    credentials_encrypted: Mapped[bytes] = mapped_column(LargeBinary, info={"secret": True})
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
