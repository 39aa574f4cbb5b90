"""Reading posts: one by id, the list with its filters, a post's activity. The post list, the
busiest read, is read as plain rows and dumped without marshmallow. Every read keeps to what the
caller may see (app/services/posts/visibility.py).
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
    any_,
    bindparam,
    cast,
    literal,
    null,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app import tenancy
from app.auth.principal import Principal
from app.extensions import db
from app.fields import dump_datetime
from app.models import AuditEvent, Post, PostLabel, PostMedia, PostVariant
from app.services.posts.visibility import client_visible, sees_every_post, visible_to


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
