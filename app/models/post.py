"""Posts: what a brand wants to say, where (variants per account), and how it went (deliveries).

A post targets some of the brand's social accounts; each target is a `PostVariant`, which may
carry its own text or media for that one account. Scheduling creates one `Delivery` per target;
the post's status then rolls up from its deliveries (app/services/deliveries.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.ids import id_factory
from app.models.base import Base, BrandScoped, Timestamps

# The most text a post may hold: above every network's limit (each network's own limit is checked
# when the post is submitted or scheduled).
MAX_TEXT = 70_000
# The names of `PostingSlot.weekday` 0 … 6, as the API spells them.
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class PostStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    # Back to the author with a comment; edited and resubmitted like a draft.
    REJECTED = "rejected"
    FAILED = "failed"
    # A publish whose outcome is not known yet (timeout, crashed worker): never retried blindly.
    UNKNOWN = "unknown"
    PARTIALLY_PUBLISHED = "partially_published"
    CANCELLED = "cancelled"


class ApprovalStage(StrEnum):
    """Who a post `in_review` waits for."""

    INTERNAL = "internal"
    CLIENT = "client"


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    # A person asked to delete the published post from the network: being done, then done.
    DELETING = "deleting"
    DELETED = "deleted"


class Post(BrandScoped, Timestamps, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # Keyset listing of a brand's posts, unfiltered and by the filters the API offers. They
        # lead with agency_id because every tenant query filters on it too: one index then
        # answers both conditions, and the planner never ANDs in the agency-wide agency_id index
        # (whose cost grows with the agency's size, not the brand's).
        Index("ix_posts_agency_id_brand_id_id", "agency_id", "brand_id", "id"),
        Index("ix_posts_agency_id_brand_id_status_id", "agency_id", "brand_id", "status", "id"),
        Index("ix_posts_agency_id_brand_id_campaign_id", "agency_id", "brand_id", "campaign", "id"),
        Index("ix_posts_agency_id_brand_id_scheduled_at", "agency_id", "brand_id", "scheduled_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("post"))
    text: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(2000))
    campaign: Mapped[str | None] = mapped_column(String(200))
    # Staff only: never shown to the brand's client users.
    internal_notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), default=PostStatus.DRAFT.value)
    approval_stage: Mapped[str | None] = mapped_column(String(16))
    # The comment of the last rejection, kept on the post so the author sees why.
    review_comment: Mapped[str | None] = mapped_column(Text)
    scheduled_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    created_by_user_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime | None]
    # Bumped on every write: the post's ETag and SQLAlchemy's guard against lost updates.
    version: Mapped[int] = mapped_column(Integer, default=1)

    label_rows: Mapped[list[PostLabel]] = relationship(
        cascade="all, delete-orphan", order_by="PostLabel.label", lazy="selectin"
    )
    media_rows: Mapped[list[PostMedia]] = relationship(
        cascade="all, delete-orphan", order_by="PostMedia.position", lazy="selectin"
    )
    variants: Mapped[list[PostVariant]] = relationship(
        cascade="all, delete-orphan", order_by="PostVariant.id", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}
    __label__ = "post"

    @property
    def labels(self) -> list[str]:
        return [row.label for row in self.label_rows]

    @property
    def media_ids(self) -> list[str]:
        return [row.media_id for row in self.media_rows]

    @property
    def account_ids(self) -> list[str]:
        return [variant.account_id for variant in self.variants]


class PostLabel(BrandScoped, Base):
    """One label of a post; a table of its own so "posts with label X" is an index lookup."""

    __tablename__ = "post_labels"
    __table_args__ = (
        Index("ix_post_labels_brand_id_label_post_id", "brand_id", "label", "post_id"),
    )

    post_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(100), primary_key=True)


class PostMedia(BrandScoped, Base):
    """The post's media, in order (position 0 first)."""

    __tablename__ = "post_media"

    post_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("media.id", ondelete="CASCADE"), index=True
    )


class PostVariant(BrandScoped, Timestamps, Base):
    """A post × one of the brand's accounts: the post goes there, optionally said differently."""

    __tablename__ = "post_variants"
    __table_args__ = (UniqueConstraint("post_id", "account_id"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("post_variant")
    )
    post_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("social_accounts.id", ondelete="CASCADE"), index=True
    )
    # None: the post's own text / media. A list (even empty) replaces the post's media here.
    text: Mapped[str | None] = mapped_column(Text)
    media_ids: Mapped[list[str] | None]
    updated_at: Mapped[datetime | None]


class DeliveryErrorKind(StrEnum):
    """What kind of trouble a delivery's last attempt met: what a person (or a program) reads
    to know whether to wait, change the post, or reconnect the account."""

    # The network was down, slow or answered 5xx before taking the post: tried again later.
    TRANSIENT = "transient"
    # The network asked us to slow down (429): the account's deliveries wait for it.
    RATE_LIMITED = "rate_limited"
    # The network refused this post (its own words in `last_error`): change the post.
    REJECTED = "rejected"
    # The account's credentials are dead: reconnect the account.
    CREDENTIALS = "credentials"
    # The post was sent and no answer came back (or the worker died): the reconciler asks.
    UNKNOWN = "unknown"
    # The network offers no way to check whether the post exists: a person must look.
    UNVERIFIABLE = "unverifiable"
    # Our side: a media file missing from storage, credentials this server cannot read.
    INTERNAL = "internal"


class Delivery(BrandScoped, Timestamps, Base):
    """One post on one social account: what the publishing workers act on.

    The database is the source of truth for the pipeline (app/services/dispatcher.py,
    app/services/publishing.py): `next_attempt_at` says when the dispatcher claims a scheduled
    delivery (or reconciles an unknown one), `lease_until` how long a claimed or publishing one
    belongs to its job before the dispatcher looks again.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("post_id", "account_id"),
        # The dispatcher's claim, every second, across agencies: `status = 'scheduled' AND
        # next_attempt_at <= :horizon ORDER BY next_attempt_at` (and the same for `unknown`) is
        # a range scan of the one status, however many published rows pile up under the others.
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # Its sweep of expired leases: `status IN ('queued', 'publishing') AND lease_until <
        # :now`, as cheap, so that looking for lost jobs every second costs next to nothing.
        Index("ix_deliveries_status_lease_until", "status", "lease_until"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=id_factory("delivery"))
    post_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("social_accounts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.SCHEDULED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    external_id: Mapped[str | None] = mapped_column(String(255))
    external_url: Mapped[str | None] = mapped_column(String(2000))
    last_error: Mapped[str | None] = mapped_column(Text)
    # A DeliveryErrorKind, and the HTTP status the network answered, if any.
    last_error_kind: Mapped[str | None] = mapped_column(String(16))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    # What the post asked for; the pipeline's own timing is in the columns below.
    scheduled_for: Mapped[datetime | None]
    # scheduled: when it is due (scheduled_for, later a retry's time); unknown: when the
    # reconciler asks the network (None: a person must check); otherwise None.
    next_attempt_at: Mapped[datetime | None]
    # queued or publishing: until when the delivery belongs to its job; past it, the dispatcher
    # enqueues the job again (lost with Redis) or reconciles (the worker died mid-call).
    lease_until: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    # When the first attempt started: networks are searched from there (`find_existing`), and
    # an idempotency key lasts `idempotency_window` from there.
    first_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


class DeliveryAttempt(BrandScoped, Base):
    """One try at a delivery (a publish, or a reconciliation asking the network): kept for the
    people who wonder why a post went out late, or not at all (`GET …/deliveries`)."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery_id_id", "delivery_id", "id"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("delivery_attempt")
    )
    delivery_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("deliveries.id", ondelete="CASCADE")
    )
    # The delivery's `attempts` count this try made.
    number: Mapped[int] = mapped_column(Integer)
    # "publish", or "reconcile" (asking the network whether an earlier try made the post).
    action: Mapped[str] = mapped_column(String(16))
    # published, found (by the reconciler), retry, failed, unknown.
    outcome: Mapped[str] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    # When the next try is due, for a `retry`.
    retry_at: Mapped[datetime | None]


class PostingSlot(BrandScoped, Timestamps, Base):
    """A weekly posting slot of a brand, in the brand's own time zone (09:00 stays 09:00)."""

    __tablename__ = "posting_slots"
    __table_args__ = (UniqueConstraint("brand_id", "weekday", "local_time"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=id_factory("posting_slot")
    )
    # 0 = Monday … 6 = Sunday (Python's `date.weekday()`; named by WEEKDAYS).
    weekday: Mapped[int] = mapped_column(Integer)
    # "HH:MM", 24-hour, local to the brand's IANA time zone.
    local_time: Mapped[str] = mapped_column(String(5))
