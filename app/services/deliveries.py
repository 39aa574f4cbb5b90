"""Deliveries: one per target account of a scheduled post, and the post's status that follows them.

`plan_deliveries` is the one way a post gets deliveries; `refresh_post_status` sets the post's
status from them (the rule is `lifecycle.roll_up`). The publishing pipeline
(app/services/dispatcher.py, publishing.py) moves them from other processes, so a person's
change to a delivery not taken yet (moved, withdrawn, cancelled) is a compare-and-set: it
changes only deliveries still pending, and is refused (409) when a job took one meanwhile.
Nothing here commits: the entry points that call these (app/services/scheduling.py, posts,
post_import) do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app import tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import (
    AccountHealth,
    Delivery,
    DeliveryAttempt,
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


# The tries shown with each delivery (the latest ones).
ATTEMPTS_SHOWN = 20


def with_attempt_log(page: list[Delivery]) -> list[dict[str, Any]]:
    """The deliveries of a page as the API shows them: their columns, and `attempt_log`, the
    latest ATTEMPTS_SHOWN tries of each, oldest first (one query for the page)."""
    logs: dict[str, list[DeliveryAttempt]] = {d.id: [] for d in page}
    if logs:
        rows = db.session.scalars(
            tenancy.scoped_select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(logs)))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.id.desc())
        )
        for row in rows:
            if len(logs[row.delivery_id]) < ATTEMPTS_SHOWN:
                logs[row.delivery_id].append(row)
    columns = [c.key for c in Delivery.__table__.columns]
    return [{**{c: getattr(d, c) for c in columns}, "attempt_log": logs[d.id][::-1]} for d in page]


def refresh_post_status(post: Post, *, actor: audit.Actor) -> PostStatus | None:
    """Set the post's status from its deliveries (the caller commits); returns the new status.

    The event recorded names what happened to the post (`post.published`, `post.failed`, …:
    lifecycle.ROLL_UP_EVENTS), so that whatever reacts to these events finds them by name."""
    deliveries = deliveries_of(post)
    status = lifecycle.roll_up([d.status for d in deliveries])
    if status is None or status.value == post.status:
        return status
    if status in lifecycle.GONE_OUT:
        post.published_at = max(
            (d.published_at for d in deliveries if d.published_at), default=utcnow()
        )
    data: dict[str, object] = {"from": post.status, "to": status.value}
    if status in lifecycle.DELIVERIES_DONE:
        data["deliveries"] = {
            d.account_id: {"status": d.status, "url": d.external_url}
            for d in deliveries
            if d.status != DeliveryStatus.CANCELLED.value
        }
    lifecycle.change_status(
        post,
        status,
        lifecycle.ROLL_UP_EVENTS.get(status, "post.status_changed"),
        data,
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
        raise Conflict(_STARTED)
    targets = set(post.account_ids)
    _remove_pending([d for a, d in existing.items() if a not in targets])
    moving = [d.id for a, d in existing.items() if a in targets]
    if moving:
        moved = db.session.execute(
            lifecycle.delivery_cas(
                tenancy.scoped_update(Delivery).where(Delivery.id.in_(moving)),
                lifecycle.PENDING_DELIVERY,
                DeliveryStatus.SCHEDULED,
            )
            .values(**_FRESH_SCHEDULE, scheduled_for=when, next_attempt_at=when)
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved != len(moving):
            raise Conflict(_STARTED)
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
                scheduled_for=when,
                next_attempt_at=when,
                updated_at=utcnow(),
            )
            db.session.add(delivery)
        else:
            db.session.refresh(delivery)
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


# A retry's leftovers: a delivery moved by a person starts afresh.
_FRESH_SCHEDULE = {
    "lease_until": None,
    "claimed_at": None,
    "last_error": None,
    "last_error_kind": None,
    "last_status_code": None,
}
_STARTED = (
    "Publishing of this post has started; it can no longer be changed, rescheduled or unscheduled."
)


def _remove_pending(gone: list[Delivery]) -> None:
    """Delete these deliveries, all still pending, or refuse (409) if a job took one."""
    if not gone:
        return
    removed = db.session.execute(
        tenancy.scoped_delete(Delivery)
        .where(
            Delivery.id.in_([d.id for d in gone]),
            Delivery.status.in_(sorted(lifecycle.PENDING_DELIVERY)),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if removed != len(gone):
        raise Conflict(_STARTED)
    for delivery in gone:
        db.session.expunge(delivery)


def withdraw_pending(post: Post) -> int:
    """Remove the deliveries no worker has taken yet (content changed, or unscheduled)."""
    current = deliveries_of(post)
    if any(
        d.status not in lifecycle.PENDING_DELIVERY and d.status != DeliveryStatus.CANCELLED.value
        for d in current
    ):
        raise Conflict(_STARTED)
    pending = [d for d in current if d.status in lifecycle.PENDING_DELIVERY]
    _remove_pending(pending)
    post.scheduled_at = None
    return len(pending)


def cancel_pending(post: Post) -> list[str]:
    """Cancel the deliveries no worker has taken yet; they stay, as the post's history. A
    delivery a job took meanwhile makes the whole cancellation a 409: what went out or is
    going out cannot be cancelled, and the post says so once its deliveries report back.
    Returns the networks of the deliveries cancelled (for the metrics, once committed)."""
    current = deliveries_of(post)
    pending = [d.id for d in current if d.status in lifecycle.PENDING_DELIVERY]
    if not pending:
        return []
    cancelled = db.session.execute(
        lifecycle.delivery_cas(
            tenancy.scoped_update(Delivery).where(Delivery.id.in_(pending)),
            lifecycle.PENDING_DELIVERY,
            DeliveryStatus.CANCELLED,
        )
        .values(next_attempt_at=None, lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if cancelled != len(pending):
        raise Conflict(
            "Publishing of this post has started on some of its accounts; it can no longer "
            "be cancelled."
        )
    for delivery in current:
        db.session.refresh(delivery)
    networks = dict(
        db.session.execute(
            tenancy.scoped_select(SocialAccount, SocialAccount.id, SocialAccount.network).where(
                SocialAccount.id.in_([d.account_id for d in current if d.id in pending])
            )
        ).all()
    )
    return [networks[d.account_id] for d in current if d.id in pending]


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
