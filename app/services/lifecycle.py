"""The post lifecycle: which moves between statuses are allowed (as data), the groups of statuses
the rest of the code asks about, and the one way a post's or a delivery's status changes.

    draft → in_review → approved → scheduled → publishing → published

with `rejected` (back to its author with a comment, edited and resubmitted like a draft),
`failed`, `unknown` (the outcome of a publish is not known yet), `partially_published` (some
deliveries failed) and `cancelled`. A brand whose approval mode is `none` skips review: its drafts
are scheduled directly (SKIPPING_REVIEW). Once scheduled, a post has one delivery per target
account, and from then on its status is what its deliveries add up to (`roll_up`).

The statuses themselves are `PostStatus` and `DeliveryStatus` in app/models/post.py: the values
of the columns and of the API's enums. To add a status, add it there, then its moves to
POST_TRANSITIONS (or DELIVERY_TRANSITIONS) and, where it belongs, to the groups below;
tests/test_lifecycle.py fails for a status used in app/ that no move reaches or leaves. To allow a
move, add its line to the table.

Every change of a status goes through `change_status` (posts) or `change_delivery_status`
(deliveries), which refuse a move the table does not list with a 409 naming both statuses, and
record the post's change in its activity (`record_post_event`). Actions keep their own, narrower
rules where a move is allowed only from some statuses (submitting takes drafts only, though
approved content also goes back to review when edited) and explain them in their own words.

What the agency's webhook endpoints hear of posts and deliveries is emitted here, and only here,
from what these functions record (POST_WEBHOOKS, PUBLISHING_WEBHOOKS, DELIVERY_WEBHOOKS): a
service that moves a post through this module, or the publishing pipeline rolling deliveries up,
announces it without a line of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Update

from app import tenancy
from app.errors import Conflict
from app.models import ApprovalMode, Brand, Delivery, DeliveryStatus, Post, PostStatus
from app.models.base import utcnow
from app.services import audit, webhooks


def _values(*statuses: PostStatus | DeliveryStatus) -> frozenset[str]:
    return frozenset(status.value for status in statuses)


# -- the moves a post may make --------------------------------------------------------------------
# A StrEnum member equals (and hashes as) its value, so a pair of column values looks up as is.

# The moves people's actions make.
ACTION_TRANSITIONS: frozenset[tuple[PostStatus, PostStatus]] = frozenset(
    {
        # Review (app/services/posts/review.py).
        (PostStatus.DRAFT, PostStatus.IN_REVIEW),  # submitted
        (PostStatus.REJECTED, PostStatus.IN_REVIEW),  # resubmitted after its edits
        (PostStatus.IN_REVIEW, PostStatus.APPROVED),  # approved at its last stage
        (PostStatus.IN_REVIEW, PostStatus.REJECTED),  # rejected, with a comment
        # Content changed after (part of) its review: reviewed again from the internal stage
        # (app/services/posts/writes.py).
        (PostStatus.APPROVED, PostStatus.IN_REVIEW),
        (PostStatus.SCHEDULED, PostStatus.IN_REVIEW),
        (PostStatus.IN_REVIEW, PostStatus.IN_REVIEW),  # the client was asked already
        # Scheduling (app/services/scheduling.py through deliveries.plan_deliveries).
        (PostStatus.APPROVED, PostStatus.SCHEDULED),
        (PostStatus.DRAFT, PostStatus.SCHEDULED),  # SKIPPING_REVIEW
        (PostStatus.REJECTED, PostStatus.SCHEDULED),  # SKIPPING_REVIEW
        (PostStatus.SCHEDULED, PostStatus.SCHEDULED),  # moved to another instant
        (PostStatus.SCHEDULED, PostStatus.APPROVED),  # unscheduled
        (PostStatus.SCHEDULED, PostStatus.DRAFT),  # unscheduled, in a brand without review
        # Cancelled before anything went out (scheduling.cancel).
        (PostStatus.DRAFT, PostStatus.CANCELLED),
        (PostStatus.IN_REVIEW, PostStatus.CANCELLED),
        (PostStatus.APPROVED, PostStatus.CANCELLED),
        (PostStatus.REJECTED, PostStatus.CANCELLED),
        (PostStatus.SCHEDULED, PostStatus.CANCELLED),
        (PostStatus.FAILED, PostStatus.CANCELLED),
    }
)

# What the deliveries add up to as the workers move them (deliveries.refresh_post_status;
# tests/test_lifecycle.py checks these against DELIVERY_TRANSITIONS and `roll_up`). Only the
# pipeline makes these moves: no action of a person does.
ROLL_UP_TRANSITIONS: frozenset[tuple[PostStatus, PostStatus]] = frozenset(
    {
        (PostStatus.SCHEDULED, PostStatus.PUBLISHING),
        (PostStatus.PUBLISHING, PostStatus.PUBLISHED),
        (PostStatus.PUBLISHING, PostStatus.PARTIALLY_PUBLISHED),
        (PostStatus.PUBLISHING, PostStatus.FAILED),
        (PostStatus.PUBLISHING, PostStatus.UNKNOWN),
        (PostStatus.UNKNOWN, PostStatus.PUBLISHING),
        (PostStatus.UNKNOWN, PostStatus.PUBLISHED),
        (PostStatus.UNKNOWN, PostStatus.PARTIALLY_PUBLISHED),
        # Every delivery waits again: a transient failure, retried later.
        (PostStatus.PUBLISHING, PostStatus.SCHEDULED),
    }
)
POST_TRANSITIONS = ACTION_TRANSITIONS | ROLL_UP_TRANSITIONS

# The event each roll-up records (app/services/deliveries.refresh_post_status), by the status it
# reaches: what the rest of the system (activity feeds, outgoing webhooks) listens for. Others
# are `post.status_changed`.
ROLL_UP_EVENTS: dict[PostStatus, str] = {
    PostStatus.PUBLISHING: "post.publishing",
    PostStatus.PUBLISHED: "post.published",
    PostStatus.PARTIALLY_PUBLISHED: "post.partially_published",
    PostStatus.FAILED: "post.failed",
    PostStatus.UNKNOWN: "post.unknown",
}

# Moves that skip review: only in a brand whose approval mode is `none`.
SKIPPING_REVIEW: frozenset[tuple[PostStatus, PostStatus]] = frozenset(
    {
        (PostStatus.DRAFT, PostStatus.SCHEDULED),
        (PostStatus.REJECTED, PostStatus.SCHEDULED),
    }
)

# -- groups of post statuses ----------------------------------------------------------------------

# Edited like a draft: such a post may be deleted, and submitted for review.
DRAFTLIKE = _values(PostStatus.DRAFT, PostStatus.REJECTED)
# Content not approved (yet, or any more): a brand that reviews posts does not schedule it.
UNAPPROVED = DRAFTLIKE | _values(PostStatus.IN_REVIEW)
# Approved content no worker has taken yet: changing it needs a fresh approval.
APPROVED_CONTENT = _values(PostStatus.APPROVED, PostStatus.SCHEDULED)
# Content may still change here; later on, the post belongs to the workers or is history.
EDITABLE = UNAPPROVED | APPROVED_CONTENT
# Gone out, on every target or on some: the post has a `published_at`.
GONE_OUT = _values(PostStatus.PUBLISHED, PostStatus.PARTIALLY_PUBLISHED)
# Every delivery has come to an end (or is waiting for a person, `unknown`).
DELIVERIES_DONE = GONE_OUT | _values(PostStatus.FAILED, PostStatus.UNKNOWN)
# A post in one of these holds its instant: no other queued post goes there.
HOLDS_SLOT = _values(
    PostStatus.SCHEDULED,
    PostStatus.PUBLISHING,
    PostStatus.PUBLISHED,
    PostStatus.PARTIALLY_PUBLISHED,
    PostStatus.UNKNOWN,
    PostStatus.FAILED,
)
# A media item used by a post in these would vanish from content already reviewed or about to
# be published: the post must drop it first.
LOCKS_MEDIA = _values(
    PostStatus.IN_REVIEW, PostStatus.APPROVED, PostStatus.SCHEDULED, PostStatus.PUBLISHING
)
# A brand's client sees what the agency has put before them: a post waiting for the client's
# approval (in_review at stage client: app/services/posts/visibility.py), and every post from
# approval on (what goes out, or went out, in the brand's name).
# Hidden from them, as if it did not exist (404, left out of lists and the calendar):
# - drafts, and posts in the agency's internal review;
# - rejected posts: back in the agency's hands and edited like drafts, so what the client would
#   read is work in progress (even when the client was the one who rejected it); the post comes
#   back to them once resubmitted and approved internally;
# - cancelled posts: the agency withdrew them, and a draft or a post in internal review can be
#   cancelled too, so the status cannot tell whether the client ever saw it.
CLIENT_VISIBLE_STATUSES = _values(
    PostStatus.APPROVED,
    PostStatus.SCHEDULED,
    PostStatus.PUBLISHING,
    PostStatus.PUBLISHED,
    PostStatus.PARTIALLY_PUBLISHED,
    PostStatus.FAILED,
    PostStatus.UNKNOWN,
)


def schedulable_statuses(brand: Brand) -> frozenset[str]:
    """Where a post of `brand` may be scheduled (or moved) from: approved content, unless the
    brand skips review."""
    reviews = _reviews(brand)
    return frozenset(
        source.value
        for source, target in ACTION_TRANSITIONS
        if target == PostStatus.SCHEDULED and not (reviews and (source, target) in SKIPPING_REVIEW)
    )


# -- changing a post's status ---------------------------------------------------------------------


def require_transition(post: Post, to: PostStatus) -> None:
    """Refuse (409) a move of `post` to `to` that the lifecycle does not allow in its brand."""
    move = (post.status, to)
    if move not in POST_TRANSITIONS:
        onward = _onward(post)
        raise Conflict(
            f"A post cannot go from '{post.status}' to '{to.value}'; "
            + (
                f"from '{post.status}' it can go to: {', '.join(onward)}."
                if onward
                else f"'{post.status}' is final."
            )
        )
    if move in SKIPPING_REVIEW:
        brand = tenancy.get_brand_or_404(post.brand_id)
        if _reviews(brand):
            raise Conflict(
                f"A post cannot go from '{post.status}' to '{to.value}' in this brand: its "
                f"approval mode is '{brand.approval_mode}', so the post must be approved first."
            )


def change_status(
    post: Post,
    to: PostStatus,
    event: str,
    data: dict[str, Any] | None,
    *,
    actor: audit.Actor,
) -> None:
    """Move `post` to `to` (409 if the lifecycle does not allow it) and record `event`, with
    `data`, in its activity. The caller commits."""
    require_transition(post, to)
    moved_from = post.status
    post.status = to.value
    post.updated_at = utcnow()
    _record(post, event, data, actor=actor, moved_from=moved_from)


def record_post_event(
    post: Post, action: str, data: dict[str, Any] | None = None, *, actor: audit.Actor
) -> None:
    """One audit event on a post: what its activity feed (`…/posts/{id}/activity`) reads. A
    step that keeps the post's status (the internal approval handing it to the client) is
    announced to webhooks by its action (POST_WEBHOOKS)."""
    _record(post, action, data, actor=actor, moved_from=None)


def _record(
    post: Post,
    action: str,
    data: dict[str, Any] | None,
    *,
    actor: audit.Actor,
    moved_from: str | None,
) -> None:
    audit.record(
        action,
        actor=actor,
        agency_id=post.agency_id,
        brand_id=post.brand_id,
        target_type="post",
        target_id=post.id,
        data=data or {},
    )
    event_type = post_webhook(action, post.status, moved_from)
    if event_type is not None:
        webhooks.emit_for_post(event_type, post, **_webhook_details(event_type, post, data or {}))


# -- what webhooks hear of posts ------------------------------------------------------------------
# The event types of app/models/webhook.py, emitted from `change_status` and `record_post_event`
# (the body carries the post as it is after the step; set its fields before moving it).

# People's steps, by the action recorded and the status the post is in after it.
POST_WEBHOOKS: dict[tuple[str, PostStatus], str] = {
    # Asked for the internal review: submitted (or resubmitted after a rejection), or returned to
    # review because approved content changed.
    ("post.submitted", PostStatus.IN_REVIEW): "post.approval_requested",
    ("post.returned_to_review", PostStatus.IN_REVIEW): "post.approval_requested",
    # The internal approval, where the client approves too: still in review, now the client's.
    ("post.approved", PostStatus.IN_REVIEW): "post.approval_requested",
    # The last step's approval (the internal one, or the client's).
    ("post.approved", PostStatus.APPROVED): "post.approved",
    ("post.rejected", PostStatus.REJECTED): "post.rejected",
    # Scheduled, moved to another instant, queued or published now (deliveries.plan_deliveries).
    ("post.scheduled", PostStatus.SCHEDULED): "post.scheduled",
}

# The outcomes of publishing, by the status the deliveries roll up to
# (deliveries.refresh_post_status), whatever the action recorded: announced once, on the move.
PUBLISHING_WEBHOOKS: dict[PostStatus, str] = {
    PostStatus.PUBLISHED: "post.published",
    PostStatus.PARTIALLY_PUBLISHED: "post.partially_published",
    PostStatus.FAILED: "post.failed",
    PostStatus.UNKNOWN: "post.unknown",
}


def post_webhook(action: str, status: str, moved_from: str | None) -> str | None:
    """The event type endpoints receive for `action` leaving a post in `status` (`moved_from`:
    its status before, when the step moved it), or None."""
    if moved_from is not None and moved_from != status and status in PUBLISHING_WEBHOOKS:
        return PUBLISHING_WEBHOOKS[PostStatus(status)]
    return POST_WEBHOOKS.get((action, PostStatus(status)))


def _webhook_details(event_type: str, post: Post, data: dict[str, Any]) -> dict[str, Any]:
    """What a review event says beside the post: the step that now waits, or the step that
    decided and the reviewer's comment."""
    if event_type == "post.approval_requested":
        return {"stage": post.approval_stage}
    if event_type in ("post.approved", "post.rejected"):
        return {"stage": data.get("stage"), "comment": data.get("comment")}
    return {}


def _reviews(brand: Brand) -> bool:
    return brand.approval_mode != ApprovalMode.NONE.value


def _onward(post: Post) -> list[str]:
    """Where `post` may go from its status in its brand, in the order of the lifecycle."""
    moves = [
        (post.status, status) for status in PostStatus if (post.status, status) in POST_TRANSITIONS
    ]
    if any(move in SKIPPING_REVIEW for move in moves) and _reviews(
        tenancy.get_brand_or_404(post.brand_id)
    ):
        moves = [move for move in moves if move not in SKIPPING_REVIEW]
    return [target.value for _, target in moves]


# -- deliveries -----------------------------------------------------------------------------------

DELIVERY_TRANSITIONS: frozenset[tuple[DeliveryStatus, DeliveryStatus]] = frozenset(
    {
        (DeliveryStatus.SCHEDULED, DeliveryStatus.SCHEDULED),  # moved to another instant
        (DeliveryStatus.SCHEDULED, DeliveryStatus.CANCELLED),  # its post was cancelled
        # The publishing pipeline (app/services/dispatcher.py, publishing.py): claimed a moment
        # before it is due, taken by one job, sent, and what came of it.
        (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED),
        # Claimed but not taken yet: the post may still be moved, edited or cancelled (the
        # job's compare-and-set then finds nothing to take), and a job hands back a delivery
        # it must not send yet (its account is rate-limited).
        (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED),
        (DeliveryStatus.QUEUED, DeliveryStatus.CANCELLED),
        # Taken by a job, committed before the network is called: the point of no return.
        (DeliveryStatus.QUEUED, DeliveryStatus.PUBLISHING),
        (DeliveryStatus.PUBLISHING, DeliveryStatus.PUBLISHED),
        (DeliveryStatus.PUBLISHING, DeliveryStatus.FAILED),
        # A transient failure: nothing was made (or the network dedupes our key); tried again.
        (DeliveryStatus.PUBLISHING, DeliveryStatus.SCHEDULED),
        # No answer after sending, or the worker died: never retried blindly. The reconciler
        # asks the network (taking the delivery as `publishing` again while it does), then
        # records the post it finds, or publishes again with the same idempotency key.
        (DeliveryStatus.PUBLISHING, DeliveryStatus.UNKNOWN),
        (DeliveryStatus.UNKNOWN, DeliveryStatus.PUBLISHED),
        (DeliveryStatus.UNKNOWN, DeliveryStatus.PUBLISHING),
        # Deleted from the network on request (app/services/network_deletion.py), or left
        # there when the network refuses (its reason in `last_error`).
        (DeliveryStatus.PUBLISHED, DeliveryStatus.DELETING),
        (DeliveryStatus.DELETING, DeliveryStatus.DELETED),
        (DeliveryStatus.DELETING, DeliveryStatus.PUBLISHED),
    }
)

# Not taken by a job yet: such deliveries can still be moved, replaced or cancelled, always by
# compare-and-set (`delivery_cas`), since the dispatcher claims them from another process.
PENDING_DELIVERY = _values(DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED)
# Taken by a job, which has not reported back yet.
DELIVERY_IN_FLIGHT = _values(DeliveryStatus.PUBLISHING)
# Went out: what the post rolls up as published, even once deleted from the network again.
WENT_OUT = _values(DeliveryStatus.PUBLISHED, DeliveryStatus.DELETING, DeliveryStatus.DELETED)


# What webhooks hear of a delivery, by the status it moves to (its post's own events come from
# the roll-up): one account's delivery failing for good, even when the others went out.
DELIVERY_WEBHOOKS: dict[DeliveryStatus, str] = {
    DeliveryStatus.FAILED: "delivery.failed",
}


def change_delivery_status(delivery: Delivery, to: DeliveryStatus) -> None:
    """Move `delivery` to `to` (409 if the lifecycle does not allow it). The caller rolls the
    post's status up (`deliveries.refresh_post_status`) and commits. Set what the move comes
    with (`last_error`, `external_url`) first: webhooks hear of the delivery as it is now.

    Only for a delivery no other process can move meanwhile (one just made); the others move
    by `delivery_cas`, then call `announce_delivery` for each row they moved."""
    if (delivery.status, to) not in DELIVERY_TRANSITIONS:
        raise Conflict(f"A delivery cannot go from '{delivery.status}' to '{to.value}'.")
    moved_from = delivery.status
    delivery.status = to.value
    delivery.updated_at = utcnow()
    announce_delivery(delivery, moved_from)


def announce_delivery(delivery: Delivery, moved_from: str) -> None:
    """Emit what webhooks hear of `delivery` having moved from `moved_from` to its status
    (DELIVERY_WEBHOOKS). `change_delivery_status` calls it; code that moves deliveries by a
    statement (a compare-and-set) calls it for each row it moved, once the row is reloaded."""
    event_type = DELIVERY_WEBHOOKS.get(DeliveryStatus(delivery.status))
    if event_type is not None and moved_from != delivery.status:
        webhooks.emit_for_delivery(event_type, delivery)


def delivery_cas(
    statement: Update, sources: Iterable[str | DeliveryStatus], to: DeliveryStatus
) -> Update:
    """`statement` (an UPDATE of deliveries, already limited to its rows) made a compare-and-
    set move to `to`: it changes only the rows still in one of `sources`, and its rowcount
    says how many moved. Every source must be allowed to go to `to` (a programming error
    otherwise, raised at once).

    The dispatcher, the publishing jobs and the API move deliveries from different processes:
    a move that read the status first and wrote it after could undo another's (cancel a
    delivery a job has just started sending). A compare-and-set cannot.
    """
    sources = sorted({DeliveryStatus(s).value for s in sources})
    refused = [s for s in sources if (DeliveryStatus(s), to) not in DELIVERY_TRANSITIONS]
    if refused:
        raise ValueError(f"a delivery cannot go from {refused} to '{to.value}'")
    return statement.where(Delivery.status.in_(sources)).values(
        status=to.value, updated_at=utcnow()
    )


def roll_up(statuses: Iterable[str]) -> PostStatus | None:
    """The post status its deliveries add up to (None: no delivery, the post keeps its own)."""
    statuses = list(statuses)
    active = [s for s in statuses if s != DeliveryStatus.CANCELLED.value]
    if not active:
        return PostStatus.CANCELLED if statuses else None
    kinds = set(active)
    if kinds & DELIVERY_IN_FLIGHT:
        return PostStatus.PUBLISHING
    if DeliveryStatus.UNKNOWN.value in kinds:
        return PostStatus.UNKNOWN
    if kinds & PENDING_DELIVERY:
        # Some went out already (e.g. published now on one account), others wait: in progress.
        if kinds <= PENDING_DELIVERY:
            return PostStatus.SCHEDULED
        return PostStatus.PUBLISHING
    published = bool(kinds & WENT_OUT)
    failed = DeliveryStatus.FAILED.value in kinds
    if published and failed:
        return PostStatus.PARTIALLY_PUBLISHED
    return PostStatus.PUBLISHED if published else PostStatus.FAILED
