"""Posts: create, edit and delete them, and choose the accounts they go to (with a variant each).

Changing what would be published sends approved (or scheduled) work back to review in brands
that review posts; in a brand that does not, a scheduled post keeps its schedule, checked against
the new content. Each public function is an entry point: it commits.
"""

from __future__ import annotations

from typing import Any

from app import tenancy
from app.auth.principal import Principal
from app.errors import Conflict, NotFound
from app.extensions import db
from app.models import (
    ApprovalMode,
    ApprovalStage,
    Brand,
    Media,
    Post,
    PostLabel,
    PostMedia,
    PostStatus,
    PostVariant,
    SocialAccount,
)
from app.models.base import utcnow
from app.services import audit, deliveries, lifecycle

# Fields whose change alters what would be published (and so needs a fresh approval).
CONTENT_FIELDS = frozenset({"text", "link", "media_ids", "account_ids", "variants"})


def create_post(
    brand: Brand, principal: Principal, data: dict[str, Any], *, actor: audit.Actor
) -> Post:
    post = Post(
        agency_id=brand.agency_id,
        brand_id=brand.id,
        text=data.get("text") or "",
        link=data.get("link"),
        campaign=data.get("campaign"),
        internal_notes=data.get("internal_notes"),
        status=PostStatus.DRAFT.value,
        created_by_user_id=principal.user_id,
    )
    db.session.add(post)
    _apply_relations(post, data)
    db.session.flush()
    lifecycle.record_post_event(post, "post.created", {"accounts": post.account_ids}, actor=actor)
    db.session.commit()
    return post


def update_post(post: Post, changes: dict[str, Any], *, actor: audit.Actor) -> Post:
    if not changes:
        return post
    content_changed = any(
        field in CONTENT_FIELDS and _differs(post, field, value) for field, value in changes.items()
    )
    if content_changed and post.status not in lifecycle.EDITABLE:
        raise Conflict(
            f"A post in status '{post.status}' can no longer be edited; only its labels, "
            "campaign and internal notes can change."
        )
    previous = post.status
    for field in ("text", "link", "campaign", "internal_notes"):
        if field in changes:
            setattr(post, field, changes[field] if field != "text" else changes[field] or "")
    _apply_relations(post, changes)
    post.updated_at = utcnow()
    lifecycle.record_post_event(post, "post.updated", {"fields": sorted(changes)}, actor=actor)
    if content_changed:
        _after_content_change(post, previous, actor)
    db.session.commit()
    return post


def _after_content_change(post: Post, previous: str, actor: audit.Actor) -> None:
    brand = tenancy.get_brand_or_404(post.brand_id)
    reviewed = brand.approval_mode != ApprovalMode.NONE.value
    approved_before = reviewed and previous in lifecycle.APPROVED_CONTENT
    client_was_asked = (
        previous == PostStatus.IN_REVIEW.value and post.approval_stage == ApprovalStage.CLIENT.value
    )
    if approved_before or client_was_asked:
        # What was approved is not what would go out any more: review it again from the start.
        deliveries.withdraw_pending(post)
        post.approval_stage = ApprovalStage.INTERNAL.value
        lifecycle.change_status(
            post, PostStatus.IN_REVIEW, "post.returned_to_review", {"from": previous}, actor=actor
        )
    elif previous == PostStatus.SCHEDULED.value:
        # No review in this brand: keep the schedule, checked against the new content and targets.
        deliveries.plan_deliveries(post, post.scheduled_at or utcnow(), actor=actor)


def _overrides(post: Post) -> list[dict[str, Any]]:
    return [
        {"account_id": v.account_id, "text": v.text, "media_ids": v.media_ids}
        for v in post.variants
    ]


def set_variant(
    post: Post, account_id: str, data: dict[str, Any], *, actor: audit.Actor
) -> PostVariant:
    """Target one more account, or change what one target says (null: the post's own)."""
    variants = [v for v in _overrides(post) if v["account_id"] != account_id]
    variants.append(
        {"account_id": account_id, "text": data.get("text"), "media_ids": data.get("media_ids")}
    )
    account_ids = post.account_ids + ([] if account_id in post.account_ids else [account_id])
    update_post(post, {"account_ids": account_ids, "variants": variants}, actor=actor)
    return next(v for v in post.variants if v.account_id == account_id)


def remove_target(post: Post, account_id: str, *, actor: audit.Actor) -> None:
    """The post no longer goes to this account (its variant goes with it)."""
    update_post(
        post,
        {
            "account_ids": [a for a in post.account_ids if a != account_id],
            "variants": [v for v in _overrides(post) if v["account_id"] != account_id],
        },
        actor=actor,
    )


def delete_post(post: Post, *, actor: audit.Actor) -> None:
    """Drafts (and rejected drafts) are deleted; anything further along is cancelled instead."""
    if post.status not in lifecycle.DRAFTLIKE:
        raise Conflict(
            f"Only drafts can be deleted; this post is '{post.status}'. "
            "Cancel it instead (POST …/posts/{post_id}/cancel)."
        )
    lifecycle.record_post_event(post, "post.deleted", {"status": post.status}, actor=actor)
    db.session.delete(post)
    db.session.commit()


def _differs(post: Post, field: str, value: Any) -> bool:
    if field == "variants":
        current = {v.account_id: (v.text, v.media_ids) for v in post.variants}
        wanted = {v["account_id"]: (v.get("text"), v.get("media_ids")) for v in value or []}
        plain = (None, None)
        return any(current.get(a, plain) != wanted.get(a, plain) for a in {*current, *wanted})
    if field == "text":
        return (value or "") != post.text
    return getattr(post, field) != value


def _apply_relations(post: Post, data: dict[str, Any]) -> None:
    """Labels, media order, target accounts and their variants, checked against the brand."""
    if "labels" in data:
        labels = sorted(set(data["labels"] or []))
        post.label_rows = [
            PostLabel(agency_id=post.agency_id, brand_id=post.brand_id, label=label)
            for label in labels
        ]
    if "media_ids" in data:
        media_ids = data["media_ids"] or []
        _require_in_brand(Media, post.brand_id, media_ids, "media_ids", "media")
        # Replace in two steps: the (post_id, position) key would collide within one flush.
        post.media_rows = []
        db.session.flush()
        post.media_rows = [
            PostMedia(agency_id=post.agency_id, brand_id=post.brand_id, position=i, media_id=m)
            for i, m in enumerate(media_ids)
        ]
    if "account_ids" in data or "variants" in data:
        _apply_targets(post, data)


def _apply_targets(post: Post, data: dict[str, Any]) -> None:
    account_ids = data.get("account_ids")
    if account_ids is None:
        account_ids = post.account_ids
    account_ids = list(dict.fromkeys(account_ids))
    _require_in_brand(SocialAccount, post.brand_id, account_ids, "account_ids", "account")
    overrides = {v["account_id"]: v for v in data.get("variants") or []}
    strangers = [a for a in overrides if a not in account_ids]
    if strangers:
        # As `…/variants/{account_id}` is a 404 for an account the post does not go to.
        raise NotFound(
            "A variant names an account the post does not target: " + ", ".join(strangers),
            errors={f"variants.{a}.account_id": ["Not one of account_ids."] for a in strangers},
        )
    for variant in overrides.values():
        if variant.get("media_ids"):
            _require_in_brand(
                Media,
                post.brand_id,
                variant["media_ids"],
                f"variants.{variant['account_id']}.media_ids",
                "media",
            )
    current = {v.account_id: v for v in post.variants}
    now = utcnow()
    kept = []
    for account_id in account_ids:
        variant = current.get(account_id) or PostVariant(
            agency_id=post.agency_id, brand_id=post.brand_id, account_id=account_id
        )
        if "variants" in data:
            override = overrides.get(account_id, {})
            variant.text = override.get("text")
            variant.media_ids = override.get("media_ids")
            variant.updated_at = now
        kept.append(variant)
    post.variants = kept


def _require_in_brand(model: Any, brand_id: str, ids: list[str], field: str, what: str) -> None:
    if not ids:
        return
    stmt = tenancy.scoped_select(model, model.id).where(
        model.brand_id == brand_id, model.id.in_(set(ids))
    )
    if hasattr(model, "deleted_at"):
        stmt = stmt.where(model.deleted_at.is_(None))
    found = set(db.session.scalars(stmt))
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    if missing:
        # Well-formed ids of nothing this brand owns: a 404, as for any address naming them.
        raise NotFound(
            f"No {what} with id {', '.join(missing)} in this brand.",
            errors={field: [f"Unknown {what}: {m}" for m in missing]},
        )
