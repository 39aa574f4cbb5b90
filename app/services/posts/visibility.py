"""Who sees which posts: a brand's client sees only the posts the agency has put before them
(`lifecycle.CLIENT_VISIBLE_STATUSES`, and a post waiting for their approval), in lists, by id,
in the calendar and in media; agency staff and API keys see every post of the brand."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Text, and_, cast, literal, or_

from app import tenancy
from app.auth.principal import Principal
from app.models import ApprovalStage, BrandRole, Media, Post, PostMedia, PostStatus, PostVariant
from app.services import lifecycle


def sees_every_post(principal: Principal, brand_id: str) -> bool:
    """Agency staff and API keys see all of a brand's posts; its client users do not."""
    return principal.brand_roles.get(brand_id) != BrandRole.CLIENT


def client_may_see(status: str, approval_stage: str | None) -> bool:
    """The rule of CLIENT_VISIBLE_STATUSES for one post (`client_visible()` is the same in SQL)."""
    if status == PostStatus.IN_REVIEW.value:
        return approval_stage == ApprovalStage.CLIENT.value
    return status in lifecycle.CLIENT_VISIBLE_STATUSES


def client_visible() -> ColumnElement[bool]:
    """The posts a brand's client may see, as a condition on `posts` (see `client_may_see`)."""
    return or_(
        Post.status.in_(sorted(lifecycle.CLIENT_VISIBLE_STATUSES)),
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
