"""Deliveries: one per target account of a scheduled post, and the post's status that follows them.

`plan_deliveries` is the one way a post gets deliveries; `refresh_post_status` sets the post's
status from them (the rule is `lifecycle.roll_up`). No publishing worker exists yet: the
Publishing work adds them, and they report back through `refresh_post_status`. Nothing here
commits: the entry points that call these (app/services/scheduling.py, posts, post_import) do.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app import tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import (
    AccountHealth,
    Delivery,
    DeliveryStatus,
    Media,
    Post,
    PostStatus,
    SocialAccount,
)
from app.models.base import utcnow
from app.services import audit, content_rules, lifecycle

# Accounts whose credentials no longer work: nothing is scheduled to them.
_CANNOT_POST = {AccountHealth.NEEDS_RECONNECT.value, AccountHealth.REVOKED.value}


def deliveries_of(post: Post) -> list[Delivery]:
    stmt = tenancy.scoped_select(Delivery).where(Delivery.post_id == post.id)
    return list(db.session.scalars(stmt.order_by(Delivery.id)))


def refresh_post_status(post: Post, *, actor: audit.Actor) -> PostStatus | None:
    """Set the post's status from its deliveries (the caller commits); returns the new status."""
    deliveries = deliveries_of(post)
    status = lifecycle.roll_up([d.status for d in deliveries])
    if status is None or status.value == post.status:
        return status
    if status in lifecycle.GONE_OUT:
        post.published_at = max(
            (d.published_at for d in deliveries if d.published_at), default=utcnow()
        )
    lifecycle.change_status(
        post,
        status,
        "post.status_changed",
        {"from": post.status, "to": status.value},
        actor=actor,
    )
    return status


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


def plan_deliveries(post: Post, when: datetime, *, actor: audit.Actor) -> list[Delivery]:
    """Schedule the post at `when` (aware): one Delivery per target account, status scheduled.

    Rescheduling moves the pending deliveries; accounts no longer targeted lose theirs.
    """
    if when.tzinfo is None:
        raise ValidationFailed(
            "The time has no offset.", errors={"scheduled_at": ["Give an RFC 3339 offset."]}
        )
    when = when.astimezone(UTC)  # kept and answered in UTC, as every later read gives it
    # The status first: a post that may not be scheduled is a 409 whatever its content.
    lifecycle.require_transition(post, PostStatus.SCHEDULED)
    check_content(post)
    existing = {d.account_id: d for d in deliveries_of(post)}
    if any(d.status not in lifecycle.PENDING_DELIVERY for d in existing.values()):
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
                status=DeliveryStatus.SCHEDULED.value,
            )
            db.session.add(delivery)
        else:
            lifecycle.change_delivery_status(delivery, DeliveryStatus.SCHEDULED)
        delivery.scheduled_for = when
        delivery.last_error = None
        delivery.updated_at = now
        deliveries.append(delivery)
    post.scheduled_at = when
    lifecycle.change_status(
        post,
        PostStatus.SCHEDULED,
        "post.scheduled",
        {"from": post.status, "scheduled_at": when.isoformat(), "accounts": sorted(targets)},
        actor=actor,
    )
    return deliveries


def withdraw_pending(post: Post) -> int:
    """Remove the deliveries no worker has taken yet (content changed, or unscheduled)."""
    removed = 0
    for delivery in deliveries_of(post):
        if delivery.status in lifecycle.PENDING_DELIVERY:
            db.session.delete(delivery)
            removed += 1
        elif delivery.status != DeliveryStatus.CANCELLED.value:
            raise Conflict(
                "Publishing of this post has started; it can no longer be changed or unscheduled."
            )
    post.scheduled_at = None
    return removed


def cancel_pending(post: Post) -> None:
    """Cancel the deliveries no worker has taken yet; they stay, as the post's history."""
    for delivery in deliveries_of(post):
        if delivery.status in lifecycle.PENDING_DELIVERY:
            lifecycle.change_delivery_status(delivery, DeliveryStatus.CANCELLED)


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
