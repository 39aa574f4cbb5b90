"""Deliveries: scheduling a post creates one per target account; the post's status follows them.

`schedule_post` is the one way a post gets deliveries; `roll_up` is the one place the post's
status is derived from them. The publishing workers (next issue) pick scheduled deliveries up from
the database and report back through `refresh_post_status`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app import tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import (
    AccountHealth,
    ApprovalMode,
    Brand,
    Delivery,
    DeliveryStatus,
    Media,
    Post,
    PostStatus,
    SocialAccount,
)
from app.models.base import utcnow
from app.services import audit, content_rules, webhooks

# Deliveries not handed to a worker yet: they can still be moved, replaced or cancelled.
PENDING = {DeliveryStatus.SCHEDULED.value}
# Accounts whose credentials no longer work: nothing is scheduled to them.
_CANNOT_POST = {AccountHealth.NEEDS_RECONNECT.value, AccountHealth.REVOKED.value}
_IN_FLIGHT = {DeliveryStatus.QUEUED.value, DeliveryStatus.PUBLISHING.value}


def record_post_event(post: Post, action: str, data: dict[str, Any] | None = None) -> None:
    """One audit event on a post: what its activity feed (`…/posts/{id}/activity`) reads."""
    audit.record(
        action,
        agency_id=post.agency_id,
        brand_id=post.brand_id,
        target_type="post",
        target_id=post.id,
        data=data or {},
    )


def roll_up(statuses: Iterable[str]) -> PostStatus | None:
    """The post status its deliveries add up to (None: no delivery, the post keeps its own)."""
    statuses = list(statuses)
    active = [s for s in statuses if s != DeliveryStatus.CANCELLED.value]
    if not active:
        return PostStatus.CANCELLED if statuses else None
    kinds = set(active)
    if kinds & _IN_FLIGHT:
        return PostStatus.PUBLISHING
    if DeliveryStatus.UNKNOWN.value in kinds:
        return PostStatus.UNKNOWN
    if DeliveryStatus.SCHEDULED.value in kinds:
        # Some went out already (e.g. published now on one account), others wait: in progress.
        if kinds == {DeliveryStatus.SCHEDULED.value}:
            return PostStatus.SCHEDULED
        return PostStatus.PUBLISHING
    published = DeliveryStatus.PUBLISHED.value in kinds
    failed = DeliveryStatus.FAILED.value in kinds
    if published and failed:
        return PostStatus.PARTIALLY_PUBLISHED
    return PostStatus.PUBLISHED if published else PostStatus.FAILED


def deliveries_of(post: Post) -> list[Delivery]:
    stmt = tenancy.scoped_select(Delivery).where(Delivery.post_id == post.id)
    return list(db.session.scalars(stmt.order_by(Delivery.id)))


def refresh_post_status(post: Post) -> PostStatus | None:
    """Set the post's status from its deliveries (the caller commits); returns the new status."""
    deliveries = deliveries_of(post)
    status = roll_up([d.status for d in deliveries])
    if status is None or status.value == post.status:
        return status
    previous = post.status
    post.status = status.value
    post.updated_at = utcnow()
    if status in (PostStatus.PUBLISHED, PostStatus.PARTIALLY_PUBLISHED):
        post.published_at = max(
            (d.published_at for d in deliveries if d.published_at), default=utcnow()
        )
    record_post_event(post, "post.status_changed", {"from": previous, "to": status.value})
    return status


def schedulable_statuses(brand: Brand) -> set[str]:
    """Where a post may be scheduled from: approved content only, unless the brand skips review."""
    allowed = {PostStatus.APPROVED.value, PostStatus.SCHEDULED.value}
    if brand.approval_mode == ApprovalMode.NONE.value:
        allowed |= {PostStatus.DRAFT.value, PostStatus.REJECTED.value}
    return allowed


def check_content(post: Post) -> None:
    """Ask each target network whether it would accept the post; 422 naming account and field."""
    accounts = _target_accounts(post)
    if not accounts:
        raise ValidationFailed(
            "The post has no target account; add at least one of the brand's accounts.",
            errors={"account_ids": ["At least one account is needed to schedule."]},
        )
    media_by_id = _media_by_id(post)
    problems: list[content_rules.Violation] = []
    for variant in post.variants:
        account = accounts[variant.account_id]
        text = variant.text if variant.text is not None else post.text
        media_ids = variant.media_ids if variant.media_ids is not None else post.media_ids
        media = [media_by_id[m] for m in media_ids if m in media_by_id]
        problems.extend(
            content_rules.Violation(account.id, "media", f"Media {m} was deleted; remove it.")
            for m in media_ids
            if m not in media_by_id
        )
        if account.health in _CANNOT_POST:
            problems.append(
                content_rules.Violation(
                    account.id,
                    "account",
                    f"The account's connection is '{account.health}'; reconnect it first.",
                )
            )
        problems.extend(content_rules.validate_post(text, media, account))
    if problems:
        raise ValidationFailed(
            "Some target accounts would refuse this post: "
            + "; ".join(
                f"{_account_label(accounts[p.account_id])} ({p.account_id}) {p.field}: {p.message}"
                for p in problems
            ),
            errors=_problem_errors(problems),
        )


def schedule_post(post: Post, when: datetime, *, commit: bool = True) -> list[Delivery]:
    """Schedule the post at `when` (aware): one Delivery per target account, status scheduled.

    Rescheduling moves the pending deliveries; accounts no longer targeted lose theirs.
    """
    if when.tzinfo is None:
        raise ValidationFailed(
            "The time has no offset.", errors={"scheduled_at": ["Give an RFC 3339 offset."]}
        )
    when = when.astimezone(UTC)  # kept and answered in UTC, as every later read gives it
    brand = tenancy.get_brand_or_404(post.brand_id)
    if post.status not in schedulable_statuses(brand):
        raise Conflict(
            f"A post in status '{post.status}' cannot be scheduled"
            + ("" if brand.approval_mode == ApprovalMode.NONE.value else "; it must be approved")
            + ".",
        )
    check_content(post)
    existing = {d.account_id: d for d in deliveries_of(post)}
    if any(d.status not in PENDING | {DeliveryStatus.CANCELLED.value} for d in existing.values()):
        raise Conflict("Some deliveries of this post already started; it cannot be rescheduled.")
    now = utcnow()
    targets = set(post.account_ids)
    for account_id, delivery in existing.items():
        if account_id not in targets:
            db.session.delete(delivery)
    deliveries = []
    for account_id in post.account_ids:
        delivery = existing.get(account_id)
        if delivery is None:
            delivery = Delivery(
                agency_id=post.agency_id,
                brand_id=post.brand_id,
                post_id=post.id,
                account_id=account_id,
            )
            db.session.add(delivery)
        delivery.status = DeliveryStatus.SCHEDULED.value
        delivery.scheduled_for = when
        delivery.last_error = None
        delivery.updated_at = now
        deliveries.append(delivery)
    previous = post.status
    post.status = PostStatus.SCHEDULED.value
    post.scheduled_at = when
    post.updated_at = now
    record_post_event(
        post,
        "post.scheduled",
        {"from": previous, "scheduled_at": when.isoformat(), "accounts": sorted(targets)},
    )
    webhooks.emit_for_post("post.scheduled", post)
    if commit:
        db.session.commit()
    return deliveries


def withdraw_pending(post: Post) -> int:
    """Remove the deliveries no worker has taken yet (content changed, or unscheduled)."""
    removed = 0
    for delivery in deliveries_of(post):
        if delivery.status in PENDING:
            db.session.delete(delivery)
            removed += 1
        elif delivery.status not in (DeliveryStatus.CANCELLED.value,):
            raise Conflict(
                "Publishing of this post has started; it can no longer be changed or unscheduled."
            )
    post.scheduled_at = None
    return removed


def cancel_post(post: Post, *, commit: bool = True) -> Post:
    """Cancel a post that has not gone out: pending deliveries are cancelled, never deleted."""
    if post.status in (
        PostStatus.PUBLISHING.value,
        PostStatus.PUBLISHED.value,
        PostStatus.PARTIALLY_PUBLISHED.value,
        PostStatus.UNKNOWN.value,
        PostStatus.CANCELLED.value,
    ):
        raise Conflict(f"A post in status '{post.status}' cannot be cancelled.")
    now = utcnow()
    for delivery in deliveries_of(post):
        if delivery.status in PENDING:
            delivery.status = DeliveryStatus.CANCELLED.value
            delivery.updated_at = now
    previous = post.status
    post.status = PostStatus.CANCELLED.value
    post.updated_at = now
    record_post_event(post, "post.cancelled", {"from": previous})
    if commit:
        db.session.commit()
    return post


def _target_accounts(post: Post) -> dict[str, SocialAccount]:
    ids = post.account_ids
    if not ids:
        return {}
    stmt = tenancy.scoped_select(SocialAccount).where(
        SocialAccount.brand_id == post.brand_id, SocialAccount.id.in_(ids)
    )
    return {a.id: a for a in db.session.scalars(stmt)}


def _media_by_id(post: Post) -> dict[str, Media]:
    wanted = set(post.media_ids)
    for variant in post.variants:
        wanted |= set(variant.media_ids or [])
    if not wanted:
        return {}
    stmt = tenancy.scoped_select(Media).where(
        Media.brand_id == post.brand_id, Media.id.in_(sorted(wanted)), Media.deleted_at.is_(None)
    )
    return {m.id: m for m in db.session.scalars(stmt)}


def _account_label(account: SocialAccount) -> str:
    # Handles are stored as the network shows them: "@name" where it uses an @, a page's name
    # where it does not.
    return f"{account.network} account {account.handle}"


def _problem_errors(problems: list[content_rules.Violation]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in problems:
        key = f"accounts.{problem.account_id}.{problem.field}"
        errors.setdefault(key, []).append(problem.message)
    return errors
