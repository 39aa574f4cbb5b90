from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.ids import id_factory
from app.models.base import Base, Timestamps


class OutboundEmailStatus:
    PENDING = "pending"  # recorded, waiting for a worker (or for its next retry)
    SENDING = "sending"  # a worker claimed it and is talking to the mail server
    SENT = "sent"
    FAILED = "failed"  # refused for good (5xx), or retries exhausted


class OutboundEmail(Timestamps, Base):
    """One message of the outbox: recorded in the transaction that calls for it, sent by a
    worker after that transaction commits (app.services.outbox).

    Not tenant-owned: most mail is sent before there is a tenant (sign-up, password reset).
    The template's context often holds a secret (the link of an invitation or a reset), so it
    is encrypted at rest and erased once the message is sent.
    """

    __tablename__ = "outbound_emails"
    __table_args__ = (
        # The sweep that re-enqueues messages Redis lost looks for old pending ones.
        Index("ix_outbound_emails_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("outbound_email")
    )
    to_address: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(60))
    context_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, info={"secret": True})
    status: Mapped[str] = mapped_column(String(10), default=OutboundEmailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)


class SignupRequest(Timestamps, Base):
    """A sign-up waiting for its address to be confirmed (POST /v1/signup/verify).

    Made for every sign-up, whether the address is free or already has an account, so that
    both answer the same, after the same work. The secret goes only to the address by mail; the
    password hash is what the person chose, checked again on confirmation (so whoever confirms
    is the person who signed up, not only whoever reads the mailbox).
    """

    __tablename__ = "signup_requests"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("signup_request")
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    agency_name: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255), info={"secret": True})
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"secret": True})
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class PasswordReset(Timestamps, Base):
    """A password-reset link mailed to a user: single use, short-lived."""

    __tablename__ = "password_resets"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("password_reset")
    )
    user_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"secret": True})
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
