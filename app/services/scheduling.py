"""When a post goes out: schedule at an instant, queue into the next free slot, publish now,
reschedule and unschedule (cancelling is `app.services.deliveries.cancel_post`).

Deliveries and the post's status are made by `app.services.deliveries` (the one place that
creates them); this module adds the rules about time: no instant in the past except "now", the
queue's next free slot, and which status a post may be moved from.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app import tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import ApprovalMode, Brand, Post, PostStatus
from app.models.base import utcnow
from app.services import audit, deliveries, posting_slots

# A request takes a moment to arrive: an instant this close behind "now" still counts as now.
CLOCK_SKEW = timedelta(seconds=30)


def _brand_of(post: Post) -> Brand:
    return tenancy.get_brand_or_404(post.brand_id)


def _not_in_past(at: datetime, field: str = "at") -> None:
    if at < utcnow() - CLOCK_SKEW:
        raise ValidationFailed(
            f"{at.isoformat()} is in the past; give a future instant, or use publish-now.",
            errors={field: ["Must be in the future."]},
        )


def _require_schedulable(post: Post, brand: Brand) -> None:
    if post.status == PostStatus.SCHEDULED.value:
        raise Conflict(
            f"The post is already scheduled for {post.scheduled_at.isoformat()}; use reschedule "
            "to move it or unschedule first."
            if post.scheduled_at
            else "The post is already scheduled; use reschedule to move it."
        )
    if post.status in (PostStatus.IN_REVIEW.value, PostStatus.REJECTED.value) or (
        post.status == PostStatus.DRAFT.value and brand.approval_mode != ApprovalMode.NONE.value
    ):
        raise Conflict(
            f"This brand's approval mode is '{brand.approval_mode}' and the post is "
            f"'{post.status}': it must be approved before it can be scheduled."
        )
    if post.status not in deliveries.schedulable_statuses(brand):
        raise Conflict(f"A post in status '{post.status}' cannot be scheduled.")


def schedule_at(post: Post, at: datetime, *, actor: audit.Actor) -> Post:
    """Schedule an unscheduled post at a future instant."""
    _not_in_past(at)
    _require_schedulable(post, _brand_of(post))
    deliveries.schedule_post(post, at, actor=actor)
    return post


def add_to_queue(post: Post, *, actor: audit.Actor) -> Post:
    """Schedule the post in the brand's next free posting slot."""
    brand = _brand_of(post)
    _require_schedulable(post, brand)
    # Two posts queued at once must not take the same slot: one queueing per brand at a time,
    # and the post read again under the lock (a parallel call may have queued it meanwhile).
    posting_slots.hold_queue(brand)
    db.session.refresh(post)
    _require_schedulable(post, brand)
    deliveries.schedule_post(post, posting_slots.next_free_slot(brand), actor=actor)
    return post


def publish_now(post: Post, *, actor: audit.Actor) -> Post:
    """Schedule for the current instant; the dispatcher picks the deliveries up at once."""
    brand = _brand_of(post)
    if post.status != PostStatus.SCHEDULED.value:
        _require_schedulable(post, brand)
    deliveries.schedule_post(post, utcnow(), actor=actor)
    return post


def reschedule(post: Post, at: datetime, *, actor: audit.Actor) -> Post:
    """Move a scheduled post to another future instant."""
    _not_in_past(at)
    if post.status != PostStatus.SCHEDULED.value:
        raise Conflict(
            f"Only a scheduled post can be rescheduled; this one is '{post.status}'"
            + (" (use schedule)." if post.status == PostStatus.APPROVED.value else ".")
        )
    deliveries.schedule_post(post, at, actor=actor)
    return post


def unschedule(post: Post, *, actor: audit.Actor) -> Post:
    """Take a scheduled post off the schedule: its waiting deliveries are removed and it goes
    back to `approved` (or `draft` when the brand has no approval step)."""
    if post.status != PostStatus.SCHEDULED.value:
        raise Conflict(f"Only a scheduled post can be unscheduled; this one is '{post.status}'.")
    brand = _brand_of(post)
    removed = deliveries.withdraw_pending(post)
    back_to = (
        PostStatus.DRAFT if brand.approval_mode == ApprovalMode.NONE.value else PostStatus.APPROVED
    )
    post.status = back_to.value
    post.scheduled_at = None
    post.updated_at = utcnow()
    audit.record(
        "post.unscheduled",
        actor=actor,
        agency_id=post.agency_id,
        brand_id=post.brand_id,
        target_type="post",
        target_id=post.id,
        data={"to": back_to.value, "deliveries_removed": removed},
    )
    db.session.commit()
    return post
