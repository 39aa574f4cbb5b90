"""Posts: create, edit, delete, and the approval workflow of the brand's mode.

Approval modes (brand.approval_mode):
- `none`: drafts are scheduled directly; submit is refused.
- `internal`: submit → in_review (stage internal) → an approver or manager approves → approved.
- `internal_and_client`: after the internal approval the post stays in_review at stage client
  until one of the brand's client users approves it through the API.
Rejection (a comment is required) sends the post to `rejected`, which is edited and resubmitted
like a draft. Changing the content of approved (or scheduled) work sends it back to review.
Every transition is in the audit trail; `activity` reads it back per post.

Reads go through one rule of who sees what: a brand's client sees only the posts the agency has
put before them (CLIENT_VISIBLE_STATUSES), in lists, by id, in the calendar and in media. The
post list, the busiest read, is read as plain rows and dumped without marshmallow.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    literal,
    null,
    or_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app import tenancy
from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, NotFound
from app.extensions import db
from app.models import (
    ApprovalMode,
    ApprovalStage,
    AuditEvent,
    Brand,
    BrandRole,
    Media,
    Post,
    PostLabel,
    PostMedia,
    PostStatus,
    PostVariant,
    SocialAccount,
)
from app.models.base import utcnow
from app.schemas.common import dump_datetime
from app.services import deliveries, webhooks

# Fields whose change alters what would be published (and so needs a fresh approval).
CONTENT_FIELDS = frozenset({"text", "link", "media_ids", "account_ids", "variants"})
_DRAFTLIKE = {PostStatus.DRAFT.value, PostStatus.REJECTED.value}
# Content may still change here; later on, the post belongs to the workers or is history.
_EDITABLE = _DRAFTLIKE | {
    PostStatus.IN_REVIEW.value,
    PostStatus.APPROVED.value,
    PostStatus.SCHEDULED.value,
}


# -- create / edit / delete -----------------------------------------------------------------------


def create_post(brand: Brand, principal: Principal, data: dict[str, Any]) -> Post:
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
    deliveries.record_post_event(post, "post.created", {"accounts": post.account_ids})
    db.session.commit()
    return post


def update_post(post: Post, changes: dict[str, Any]) -> Post:
    if not changes:
        return post
    content_changed = any(
        field in CONTENT_FIELDS and _differs(post, field, value) for field, value in changes.items()
    )
    if content_changed and post.status not in _EDITABLE:
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
    deliveries.record_post_event(post, "post.updated", {"fields": sorted(changes)})
    if content_changed:
        _after_content_change(post, previous)
    db.session.commit()
    return post


def _after_content_change(post: Post, previous: str) -> None:
    brand = tenancy.get_brand_or_404(post.brand_id)
    reviewed = brand.approval_mode != ApprovalMode.NONE.value
    approved_before = reviewed and previous in (
        PostStatus.APPROVED.value,
        PostStatus.SCHEDULED.value,
    )
    client_was_asked = (
        previous == PostStatus.IN_REVIEW.value and post.approval_stage == ApprovalStage.CLIENT.value
    )
    if approved_before or client_was_asked:
        # What was approved is not what would go out any more: review it again from the start.
        deliveries.withdraw_pending(post)
        post.status = PostStatus.IN_REVIEW.value
        post.approval_stage = ApprovalStage.INTERNAL.value
        deliveries.record_post_event(post, "post.returned_to_review", {"from": previous})
        webhooks.emit_for_post("post.approval_requested", post, stage=post.approval_stage)
    elif previous == PostStatus.SCHEDULED.value:
        # No review in this brand: keep the schedule, checked against the new content and targets.
        deliveries.schedule_post(post, post.scheduled_at or utcnow(), commit=False)


def _overrides(post: Post) -> list[dict[str, Any]]:
    return [
        {"account_id": v.account_id, "text": v.text, "media_ids": v.media_ids}
        for v in post.variants
    ]


def set_variant(post: Post, account_id: str, data: dict[str, Any]) -> PostVariant:
    """Target one more account, or change what one target says (null: the post's own)."""
    variants = [v for v in _overrides(post) if v["account_id"] != account_id]
    variants.append(
        {"account_id": account_id, "text": data.get("text"), "media_ids": data.get("media_ids")}
    )
    account_ids = post.account_ids + ([] if account_id in post.account_ids else [account_id])
    update_post(post, {"account_ids": account_ids, "variants": variants})
    return next(v for v in post.variants if v.account_id == account_id)


def remove_target(post: Post, account_id: str) -> None:
    """The post no longer goes to this account (its variant goes with it)."""
    update_post(
        post,
        {
            "account_ids": [a for a in post.account_ids if a != account_id],
            "variants": [v for v in _overrides(post) if v["account_id"] != account_id],
        },
    )


def delete_post(post: Post) -> None:
    """Drafts (and rejected drafts) are deleted; anything further along is cancelled instead."""
    if post.status not in _DRAFTLIKE:
        raise Conflict(
            f"Only drafts can be deleted; this post is '{post.status}'. "
            "Cancel it instead (POST …/posts/{post_id}/cancel)."
        )
    deliveries.record_post_event(post, "post.deleted", {"status": post.status})
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


# -- approval -------------------------------------------------------------------------------------


def _role_on(principal: Principal, brand_id: str) -> BrandRole | None:
    return principal.brand_roles.get(brand_id)


def submit(post: Post) -> Post:
    brand = tenancy.get_brand_or_404(post.brand_id)
    if brand.approval_mode == ApprovalMode.NONE.value:
        raise Conflict("This brand does not review posts (approval mode 'none'); schedule it.")
    if post.status not in _DRAFTLIKE:
        raise Conflict(f"Only drafts can be submitted for review; this post is '{post.status}'.")
    # Reviewers should not approve what a network would refuse.
    deliveries.check_content(post)
    previous = post.status
    post.status = PostStatus.IN_REVIEW.value
    post.approval_stage = ApprovalStage.INTERNAL.value
    post.updated_at = utcnow()
    deliveries.record_post_event(post, "post.submitted", {"from": previous})
    webhooks.emit_for_post("post.approval_requested", post, stage=post.approval_stage)
    db.session.commit()
    return post


def _check_reviewer(post: Post, principal: Principal, brand: Brand) -> None:
    """Internal stage: staff reviewers; client stage: the brand's client users only."""
    if post.status != PostStatus.IN_REVIEW.value:
        raise Conflict(f"This post is '{post.status}', not in review.")
    is_client = _role_on(principal, brand.id) == BrandRole.CLIENT
    client_step = brand.approval_mode == ApprovalMode.INTERNAL_AND_CLIENT.value
    if is_client and not client_step:
        raise Forbidden("In this brand the agency approves posts; clients are not asked.")
    # A brand switched away from client approval no longer waits for its client.
    if client_step and post.approval_stage == ApprovalStage.CLIENT.value:
        if not is_client:
            raise Forbidden("This post waits for the client's approval.")
    elif is_client:
        raise Forbidden("The agency reviews this post before the client does.")


def approve(post: Post, principal: Principal, comment: str | None = None) -> Post:
    brand = tenancy.get_brand_or_404(post.brand_id)
    _check_reviewer(post, principal, brand)
    stage = post.approval_stage or ApprovalStage.INTERNAL.value
    needs_client = brand.approval_mode == ApprovalMode.INTERNAL_AND_CLIENT.value
    if stage == ApprovalStage.INTERNAL.value and needs_client:
        post.approval_stage = ApprovalStage.CLIENT.value
        webhooks.emit_for_post("post.approval_requested", post, stage=post.approval_stage)
    else:
        post.status = PostStatus.APPROVED.value
        post.approval_stage = None
        webhooks.emit_for_post("post.approved", post, stage=stage, comment=comment)
    post.review_comment = None
    return _reviewed(post, "post.approved", stage, comment)


def reject(post: Post, principal: Principal, comment: str) -> Post:
    brand = tenancy.get_brand_or_404(post.brand_id)
    _check_reviewer(post, principal, brand)
    stage = post.approval_stage or ApprovalStage.INTERNAL.value
    post.status = PostStatus.REJECTED.value
    post.approval_stage = None
    post.review_comment = comment
    webhooks.emit_for_post("post.rejected", post, stage=stage, comment=comment)
    return _reviewed(post, "post.rejected", stage, comment)


def _reviewed(post: Post, action: str, stage: str, comment: str | None) -> Post:
    post.updated_at = utcnow()
    deliveries.record_post_event(post, action, {"stage": stage, "comment": comment})
    db.session.commit()
    return post


# -- what a brand's client sees ------------------------------------------------------------------

# A brand's client sees what the agency has put before them: a post waiting for the client's
# approval, and every post from approval on (what goes out, or went out, in the brand's name).
# Hidden from them, as if it did not exist (404, left out of lists and the calendar):
# - drafts, and posts in the agency's internal review;
# - rejected posts: back in the agency's hands and edited like drafts, so what the client would
#   read is work in progress (even when the client was the one who rejected it); the post comes
#   back to them once resubmitted and approved internally;
# - cancelled posts: the agency withdrew them, and a draft or a post in internal review can be
#   cancelled too, so the status cannot tell whether the client ever saw it.
CLIENT_VISIBLE_STATUSES = frozenset(
    {
        PostStatus.APPROVED.value,
        PostStatus.SCHEDULED.value,
        PostStatus.PUBLISHING.value,
        PostStatus.PUBLISHED.value,
        PostStatus.PARTIALLY_PUBLISHED.value,
        PostStatus.FAILED.value,
        PostStatus.UNKNOWN.value,
    }
)


def sees_every_post(principal: Principal, brand_id: str) -> bool:
    """Agency staff and API keys see all of a brand's posts; its client users do not."""
    return principal.brand_roles.get(brand_id) != BrandRole.CLIENT


def client_may_see(status: str, approval_stage: str | None) -> bool:
    """The rule of CLIENT_VISIBLE_STATUSES for one post (`client_visible()` is the same in SQL)."""
    if status == PostStatus.IN_REVIEW.value:
        return approval_stage == ApprovalStage.CLIENT.value
    return status in CLIENT_VISIBLE_STATUSES


def client_visible() -> ColumnElement[bool]:
    """The posts a brand's client may see, as a condition on `posts` (see `client_may_see`)."""
    return or_(
        Post.status.in_(sorted(CLIENT_VISIBLE_STATUSES)),
        and_(
            Post.status == PostStatus.IN_REVIEW.value,
            Post.approval_stage == ApprovalStage.CLIENT.value,
        ),
    )


def visible_to(principal: Principal, brand_id: str) -> list[ColumnElement[bool]]:
    """The conditions every read of a brand's posts adds for `principal` (none for staff)."""
    return [] if sees_every_post(principal, brand_id) else [client_visible()]


def media_visible_to(principal: Principal, brand_id: str) -> list[ColumnElement[bool]]:
    """The conditions on `media` for `principal`: a brand's client sees the media of the posts
    they see (a post's own, or a variant's), and nothing else of the brand's library."""
    if sees_every_post(principal, brand_id):
        return []
    in_a_post = (
        tenancy.scoped_select(PostMedia, PostMedia.media_id)
        .join(Post, Post.id == PostMedia.post_id)
        .where(PostMedia.brand_id == brand_id, PostMedia.media_id == Media.id, client_visible())
    )
    # Variants keep their media ids as a JSON list: look for the id, quoted, in its text.
    in_a_variant = (
        tenancy.scoped_select(PostVariant, PostVariant.id)
        .join(Post, Post.id == PostVariant.post_id)
        .where(
            PostVariant.brand_id == brand_id,
            cast(PostVariant.media_ids, Text).contains(literal('"') + Media.id + literal('"')),
            client_visible(),
        )
    )
    return [or_(in_a_post.exists(), in_a_variant.exists())]


# -- reads ----------------------------------------------------------------------------------------


def get_post_or_404(brand_id: str, post_id: str, principal: Principal) -> Post:
    """A post of the brand that `principal` may see; any other is a 404, as if it did not exist."""
    return tenancy.get_in_brand_or_404(
        Post, brand_id, post_id, what="post", where=visible_to(principal, brand_id)
    )


def list_statement(
    brand_id: str, args: dict[str, Any], principal: Principal, *columns: Any
) -> Select[Any]:
    """The brand's posts that `principal` may see, with the list filters (of `columns` when
    given, else Post objects); the caller pages it by id."""
    stmt = tenancy.scoped_select(Post, *columns).where(
        Post.brand_id == brand_id, *visible_to(principal, brand_id)
    )
    return _filtered(stmt, brand_id, {name: args[name] for name in _FILTERS if args.get(name)})


_FILTERS = ("status", "campaign", "label", "from_", "to")


def _filtered(stmt: Select[Any], brand_id: str, filters: dict[str, Any]) -> Select[Any]:
    """The list filters given (values, or parameters to bind later)."""
    if "status" in filters:
        stmt = stmt.where(Post.status == filters["status"])
    if "campaign" in filters:
        stmt = stmt.where(Post.campaign == filters["campaign"])
    if "label" in filters:
        stmt = stmt.join(
            PostLabel,
            (PostLabel.post_id == Post.id)
            & (PostLabel.brand_id == brand_id)
            & (PostLabel.label == filters["label"]),
        )
    if "from_" in filters:
        stmt = stmt.where(Post.scheduled_at >= filters["from_"])
    if "to" in filters:
        stmt = stmt.where(Post.scheduled_at < filters["to"])
    return stmt


def activity_statement(post: Post) -> Select[Any]:
    return tenancy.scoped_select(AuditEvent).where(
        AuditEvent.brand_id == post.brand_id,
        AuditEvent.target_type == "post",
        AuditEvent.target_id == post.id,
    )


# -- the list, read lean --------------------------------------------------------------------------
# Calendars and boards list posts all day. A page is read as plain rows, without ORM objects,
# and put in PostSchema's shape here, without marshmallow: for 50 posts with their variants and
# labels, that is a few times less CPU than loading and dumping objects. PostSchema still
# documents the response; tests/test_lean_lists.py holds both shapes equal, field by field.

# The columns of `posts` a post's JSON shows, in PostSchema's order.
_LIST_COLUMNS = (
    Post.id,
    Post.brand_id,
    Post.text,
    Post.link,
    Post.campaign,
    Post.internal_notes,
    Post.status,
    Post.approval_stage,
    Post.review_comment,
    Post.scheduled_at,
    Post.published_at,
    Post.created_by_user_id,
    Post.created_at,
    Post.updated_at,
)


def list_page_rows(brand_id: str, args: dict[str, Any], principal: Principal) -> Sequence[Any]:
    """The rows of one page of the list, for `list_items`: `list_statement`'s posts after
    the cursor, by id, `limit` + 1 of them (the extra one tells that a next page exists), as
    `app.api.http.paginate` reads a page.

    The statement is built once per shape (tenant scope, brand, caller's view, filters given,
    cursor or not), the values bound at each call: building it cost a tenth of the page.
    """
    filters = tuple(name for name in _FILTERS if args.get(name))
    stmt = _page_statement(
        tenancy.current_scope(),
        brand_id,
        sees_every_post(principal, brand_id),
        filters,
        bool(args.get("cursor")),
    )
    values = {name: args[name] for name in filters}
    values.update(page_cursor=args.get("cursor"), page_limit=args["limit"] + 1)
    return db.session.connection().execute(stmt, values).all()


@functools.lru_cache(maxsize=1024)
def _page_statement(
    scope: tenancy.TenantScope,
    brand_id: str,
    every_post: bool,
    filters: tuple[str, ...],
    after_cursor: bool,
) -> Select[Any]:
    stmt = tenancy.scoped_select(Post, *_LIST_COLUMNS, scope=scope).where(
        Post.brand_id == brand_id, *([] if every_post else [client_visible()])
    )
    stmt = _filtered(stmt, brand_id, {name: bindparam(name) for name in filters})
    if after_cursor:
        stmt = stmt.where(Post.id > bindparam("page_cursor"))
    return stmt.order_by(Post.id).limit(bindparam("page_limit"))


def list_items(rows: Sequence[Any], brand_id: str, principal: Principal) -> list[dict[str, Any]]:
    """A page of `list_page_rows` rows as PostSchema dumps them: with their labels (by
    name), media (in order) and variants (by id), read in one query for the whole page."""
    if not rows:
        return []
    ids = [row[0] for row in rows]
    connection = db.session.connection()
    read_parts = _parts_statement(tenancy.current_scope(), connection.dialect.name)
    labels: dict[str, list[str]] = {post_id: [] for post_id in ids}
    media: dict[str, list[str]] = {post_id: [] for post_id in ids}
    variants: dict[str, list[dict[str, Any]]] = {post_id: [] for post_id in ids}
    for part, post_id, key, _, account_id, text, media_ids in connection.execute(
        read_parts, {"ids": ids}
    ).all():
        if part == _LABEL:
            labels[post_id].append(key)
        elif part == _MEDIA:
            media[post_id].append(key)
        else:
            variants[post_id].append(
                {
                    "id": key,
                    "account_id": account_id,
                    "text": text,
                    "media_ids": None if media_ids in (None, "null") else json.loads(media_ids),
                }
            )
    # As StaffOnlyText: internal notes are null for the brand's client users.
    notes_shown = sees_every_post(principal, brand_id)
    items = []
    # Unpacked by position (the order of _LIST_COLUMNS): a Row's attributes cost more to read.
    for (
        post_id,
        post_brand_id,
        text,
        link,
        campaign,
        internal_notes,
        status,
        approval_stage,
        review_comment,
        scheduled_at,
        published_at,
        created_by_user_id,
        created_at,
        updated_at,
    ) in rows:
        post_variants = variants[post_id]
        items.append(
            {
                "id": post_id,
                "brand_id": post_brand_id,
                "text": text,
                "link": link,
                "labels": labels[post_id],
                "campaign": campaign,
                "internal_notes": internal_notes if notes_shown else None,
                "status": status,
                "approval_stage": approval_stage,
                "review_comment": review_comment,
                "media_ids": media[post_id],
                "account_ids": [variant["account_id"] for variant in post_variants],
                "variants": post_variants,
                "scheduled_at": dump_datetime(scheduled_at),
                "published_at": dump_datetime(published_at),
                "created_by_user_id": created_by_user_id,
                "created_at": dump_datetime(created_at),
                "updated_at": dump_datetime(updated_at),
            }
        )
    return items


_LABEL, _MEDIA, _VARIANT = 1, 2, 3


@functools.lru_cache(maxsize=512)
def _parts_statement(scope: tenancy.TenantScope, dialect: str) -> CompoundSelect[Any]:
    """One statement reading the labels, media and variants of a page of posts (`:ids`), as
    rows (part, post_id, key, position, account_id, text, media_ids) ordered as the ORM
    relationships order them: labels by name, media by position, variants by id.

    Built once per tenant scope: building a statement and its cache key costs about as much
    CPU as running it, and one statement instead of three halves the cost of reading. The
    post ids alone select the rows (no brand condition), so that the database reads them by
    post id whatever the size of the brand.
    """
    if dialect == "postgresql":
        # One array parameter: psycopg caches its parsing of a statement only up to 50
        # parameters, and a page holds 50 posts.
        ids: Any = bindparam("ids", type_=ARRAY(String))

        def among(column: Any) -> ColumnElement[bool]:
            return column == any_(ids)
    else:

        def among(column: Any) -> ColumnElement[bool]:
            return column.in_(bindparam("ids", expanding=True))

    def nothing(kind: Any) -> Any:
        return cast(null(), kind)

    labels = tenancy.scoped_select(
        PostLabel,
        literal(_LABEL).label("part"),
        PostLabel.post_id,
        PostLabel.label.label("key"),
        nothing(Integer).label("position"),
        nothing(String).label("account_id"),
        nothing(Text).label("text"),
        nothing(Text).label("media_ids"),
        scope=scope,
    ).where(among(PostLabel.post_id))
    media = tenancy.scoped_select(
        PostMedia,
        literal(_MEDIA),
        PostMedia.post_id,
        PostMedia.media_id,
        PostMedia.position,
        nothing(String),
        nothing(Text),
        nothing(Text),
        scope=scope,
    ).where(among(PostMedia.post_id))
    variants = tenancy.scoped_select(
        PostVariant,
        literal(_VARIANT),
        PostVariant.post_id,
        PostVariant.id,
        nothing(Integer),
        PostVariant.account_id,
        PostVariant.text,
        # As text, decoded by `list_items` only where there is a list: most variants keep the
        # post's media (null), and the driver's JSON decoding of every row costs.
        cast(PostVariant.media_ids, Text),
        scope=scope,
    ).where(among(PostVariant.post_id))
    parts = union_all(labels, media, variants)
    column = parts.selected_columns
    # Within a part, `position` is set for media only, `key` sorts labels and variants.
    return parts.order_by(column.part, column.post_id, column.position, column.key)
