"""A brand's weekly posting slots (stored), the queue's next free slot and the calendar.

The arithmetic of local times, DST gaps and repeated hours lives in `app.services.slot_times`;
this module reads and writes the rows and decides which instants are taken.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from app import tenancy
from app.auth.principal import Principal
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import Brand, Post, PostingSlot
from app.models.base import utcnow
from app.models.post import WEEKDAYS
from app.services import audit, lifecycle, posts, slot_times

MAX_SLOTS = 200
MAX_CALENDAR_RANGE = timedelta(days=92)


def weekly_slots(brand: Brand) -> list[slot_times.WeeklySlot]:
    rows = db.session.scalars(
        tenancy.scoped_select(PostingSlot).where(PostingSlot.brand_id == brand.id)
    )
    return sorted(
        slot_times.WeeklySlot(row.weekday, time.fromisoformat(row.local_time)) for row in rows
    )


def replace_slots(
    brand: Brand, wanted: list[dict[str, Any]], *, actor: audit.Actor
) -> list[slot_times.WeeklySlot]:
    """Make the brand's weekly slots exactly `wanted` (`{weekday, time}` items)."""
    if len(wanted) > MAX_SLOTS:
        raise ValidationFailed(
            f"At most {MAX_SLOTS} weekly slots per brand.",
            errors={"slots": [f"At most {MAX_SLOTS} items."]},
        )
    seen: dict[tuple[int, str], int] = {}
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(wanted):
        key = (WEEKDAYS.index(item["weekday"]), item["time"])
        if key in seen:
            errors[f"slots.{index}"] = [f"Same weekday and time as slot {seen[key]}."]
        seen.setdefault(key, index)
    if errors:
        raise ValidationFailed("Each weekly slot may appear once.", errors=errors)
    db.session.execute(tenancy.scoped_delete(PostingSlot).where(PostingSlot.brand_id == brand.id))
    for weekday, local_time in sorted(seen):
        db.session.add(
            PostingSlot(
                agency_id=brand.agency_id, brand_id=brand.id, weekday=weekday, local_time=local_time
            )
        )
    audit.record(
        "brand.posting_slots.replaced",
        actor=actor,
        agency_id=brand.agency_id,
        brand_id=brand.id,
        target_type="brand",
        target_id=brand.id,
        data={"count": len(seen)},
    )
    db.session.commit()
    return weekly_slots(brand)


def taken_instants(brand: Brand, start: datetime, end: datetime | None = None) -> set[datetime]:
    """Instants from `start` (to `end`) already held by one of the brand's posts."""
    stmt = tenancy.scoped_select(Post, Post.scheduled_at).where(
        Post.brand_id == brand.id,
        Post.status.in_(sorted(lifecycle.HOLDS_SLOT)),
        Post.scheduled_at >= start,
    )
    if end is not None:
        stmt = stmt.where(Post.scheduled_at < end)
    return {at for at in db.session.scalars(stmt) if at is not None}


def hold_queue(brand: Brand) -> None:
    """Hold the brand's queue until the transaction ends, so that two callers never read the
    same free slot: a row lock on the brand on PostgreSQL; on SQLite, which has no row locks,
    the database's write lock, taken before the free slots are read."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        db.session.scalars(
            tenancy.scoped_select(Brand).where(Brand.id == brand.id).with_for_update()
        ).first()
    elif dialect == "sqlite":
        # The sqlite3 driver opens a transaction only at the first write, so the reads before
        # it see whatever other writers commit meanwhile. BEGIN IMMEDIATE takes the write lock
        # now (waiting out busy_timeout, as any write does); a transaction already open began
        # with a write and holds the lock already.
        connection = db.session.connection()
        if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def next_free_slot(brand: Brand, after: datetime | None = None) -> datetime:
    """The brand's next posting slot after `after` (default now) that no post holds (call
    `hold_queue` first when the slot is to be taken)."""
    after = after or utcnow()
    weekly = weekly_slots(brand)
    if not weekly:
        raise Conflict(
            "This brand has no posting slots, so there is no queue to add to; define them with "
            f"PUT /v1/brands/{brand.id}/posting-slots, or schedule at a given time."
        )
    horizon = slot_times.DEFAULT_HORIZON
    free = slot_times.next_free_slots(
        weekly,
        brand.timezone,
        after,
        taken=taken_instants(brand, after, after + horizon),
        horizon=horizon,
    )
    if not free:
        raise Conflict("Every posting slot of the coming year is taken; add slots or schedule.")
    return free[0]


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValidationFailed(
            "'to' must be after 'from'.", errors={"query.to": ["Must be after 'from'."]}
        )
    if end - start > MAX_CALENDAR_RANGE:
        raise ValidationFailed(
            f"A calendar covers at most {MAX_CALENDAR_RANGE.days} days; ask for a shorter range.",
            errors={"query.to": [f"At most {MAX_CALENDAR_RANGE.days} days after 'from'."]},
        )


def calendar(brand: Brand, start: datetime, end: datetime, principal: Principal) -> dict[str, Any]:
    """The brand's posts (scheduled or published) that `principal` may see, and the free slots
    in [start, end)."""
    check_range(start, end)
    occupying = list(
        db.session.scalars(
            tenancy.scoped_select(Post)
            .where(
                Post.brand_id == brand.id,
                Post.status.in_(sorted(lifecycle.HOLDS_SLOT)),
                Post.scheduled_at >= start,
                Post.scheduled_at < end,
            )
            .order_by(Post.scheduled_at, Post.id)
        )
    )
    # A post the caller may not see still holds its slot.
    taken = {post.scheduled_at for post in occupying}
    if posts.sees_every_post(principal, brand.id):
        shown = occupying
    else:
        shown = [
            post for post in occupying if posts.client_may_see(post.status, post.approval_stage)
        ]
    free = [
        at
        for at in slot_times.slots_between(weekly_slots(brand), brand.timezone, start, end)
        if at not in taken
    ]
    zone = brand.timezone
    return {
        "timezone": zone,
        "from_": start,
        "to": end,
        "posts": [
            {
                "id": post.id,
                "status": post.status,
                "text": post.text,
                "labels": post.labels,
                "account_ids": post.account_ids,
                "at": post.scheduled_at,
                "local_at": slot_times.local_view(post.scheduled_at, zone),
                "published_at": post.published_at,
            }
            for post in shown
        ],
        "free_slots": [{"at": at, "local_at": slot_times.local_view(at, zone)} for at in free],
    }
