"""When a post goes out: schedule at an instant, queue into the next free slot, publish now,
reschedule, unschedule and cancel. Each of these is an entry point: it commits.

Deliveries are made by `app.services.deliveries` (the one place that creates them) and the moves
of the post's status are checked by `app.services.lifecycle`; this module adds the rules about
time (no instant in the past except "now", the queue's next free slot) and which of the moves
to `scheduled` each action makes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app import metrics, tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import ApprovalMode, Brand, Post, PostStatus
from app.models.base import utcnow
from app.services import audit, deliveries, lifecycle, posting_slots

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
    if post.status in lifecycle.schedulable_statuses(brand):
        return
    if post.status in lifecycle.UNAPPROVED:
        raise Conflict(
            f"This brand's approval mode is '{brand.approval_mode}' and the post is "
            f"'{post.status}': it must be approved before it can be scheduled."
        )
    raise Conflict(f"A post in status '{post.status}' cannot be scheduled.")


def schedule_at(post: Post, at: datetime, *, actor: audit.Actor) -> Post:
    """Schedule an unscheduled post at a future instant."""
    _not_in_past(at)
    _require_schedulable(post, _brand_of(post))
    deliveries.plan_deliveries(post, at, actor=actor)
    db.session.commit()
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
    deliveries.plan_deliveries(post, posting_slots.next_free_slot(brand), actor=actor)
    db.session.commit()
    return post


def publish_now(post: Post, *, actor: audit.Actor) -> Post:
    """Schedule for the current instant; the dispatcher picks the deliveries up at once."""
    brand = _brand_of(post)
    if post.status != PostStatus.SCHEDULED.value:
        _require_schedulable(post, brand)
    deliveries.plan_deliveries(post, utcnow(), actor=actor)
    db.session.commit()
    return post


def reschedule(post: Post, at: datetime, *, actor: audit.Actor) -> Post:
    """Move a scheduled post to another future instant."""
    _not_in_past(at)
    if post.status != PostStatus.SCHEDULED.value:
        raise Conflict(
            f"Only a scheduled post can be rescheduled; this one is '{post.status}'"
            + (" (use schedule)." if post.status == PostStatus.APPROVED.value else ".")
        )
    deliveries.plan_deliveries(post, at, actor=actor)
    db.session.commit()
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
    lifecycle.change_status(
        post,
        back_to,
        "post.unscheduled",
        {"to": back_to.value, "deliveries_removed": removed},
        actor=actor,
    )
    db.session.commit()
    return post


def cancel(post: Post, *, actor: audit.Actor) -> Post:
    """Cancel a post that has not gone out: its pending deliveries are cancelled, never deleted,
    and the post and its activity stay readable."""
    lifecycle.require_transition(post, PostStatus.CANCELLED)
    networks = deliveries.cancel_pending(post)
    lifecycle.change_status(
        post, PostStatus.CANCELLED, "post.cancelled", {"from": post.status}, actor=actor
    )
    db.session.commit()
    for network in networks:
        metrics.delivery_attempted(network, "cancelled")
    return post
