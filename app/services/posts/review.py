"""The review of posts, by the brand's approval mode (brand.approval_mode):

- `none`: drafts are scheduled directly; submit is refused.
- `internal`: submit → in_review (stage internal) → an approver or manager approves → approved.
- `internal_and_client`: after the internal approval the post stays in_review at stage client
  until one of the brand's client users approves it through the API.

Rejection (a comment is required) sends the post to `rejected`, which is edited and resubmitted
like a draft. Every step is in the post's activity. Each public function is an entry point: it
commits.
"""

from __future__ import annotations

from app import tenancy
from app.auth.principal import Principal
from app.errors import Conflict, Forbidden
from app.extensions import db
from app.models import ApprovalMode, ApprovalStage, Brand, BrandRole, Post, PostStatus
from app.models.base import utcnow
from app.services import audit, deliveries, lifecycle


def _role_on(principal: Principal, brand_id: str) -> BrandRole | None:
    return principal.brand_roles.get(brand_id)


def submit(post: Post, *, actor: audit.Actor) -> Post:
    brand = tenancy.get_brand_or_404(post.brand_id)
    if brand.approval_mode == ApprovalMode.NONE.value:
        raise Conflict("This brand does not review posts (approval mode 'none'); schedule it.")
    if post.status not in lifecycle.DRAFTLIKE:
        raise Conflict(f"Only drafts can be submitted for review; this post is '{post.status}'.")
    # Reviewers should not approve what a network would refuse.
    deliveries.check_content(post)
    post.approval_stage = ApprovalStage.INTERNAL.value
    lifecycle.change_status(
        post, PostStatus.IN_REVIEW, "post.submitted", {"from": post.status}, actor=actor
    )
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


def approve(
    post: Post, principal: Principal, comment: str | None = None, *, actor: audit.Actor
) -> Post:
    brand = tenancy.get_brand_or_404(post.brand_id)
    _check_reviewer(post, principal, brand)
    stage = post.approval_stage or ApprovalStage.INTERNAL.value
    needs_client = brand.approval_mode == ApprovalMode.INTERNAL_AND_CLIENT.value
    post.review_comment = None
    event = {"stage": stage, "comment": comment}
    if stage == ApprovalStage.INTERNAL.value and needs_client:
        # Still in review, now at the client's stage: the status stays.
        post.approval_stage = ApprovalStage.CLIENT.value
        post.updated_at = utcnow()
        lifecycle.record_post_event(post, "post.approved", event, actor=actor)
    else:
        post.approval_stage = None
        lifecycle.change_status(post, PostStatus.APPROVED, "post.approved", event, actor=actor)
    db.session.commit()
    return post


def reject(post: Post, principal: Principal, comment: str, *, actor: audit.Actor) -> Post:
    brand = tenancy.get_brand_or_404(post.brand_id)
    _check_reviewer(post, principal, brand)
    stage = post.approval_stage or ApprovalStage.INTERNAL.value
    post.approval_stage = None
    post.review_comment = comment
    lifecycle.change_status(
        post,
        PostStatus.REJECTED,
        "post.rejected",
        {"stage": stage, "comment": comment},
        actor=actor,
    )
    db.session.commit()
    return post
