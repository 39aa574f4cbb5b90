from __future__ import annotations

from collections.abc import Callable

from flask.views import MethodView
from sqlalchemy import Select

from app import tenancy
from app.api.http import (
    ETAG_HEADER_DOC,
    LINK_HEADER_DOC,
    Blueprint,
    brand_route,
    page_response,
    paginate,
    send_etag,
)
from app.api.idempotency import idempotent
from app.api.views import operation, read_view, update_view
from app.auth.principal import Principal, current_actor, current_principal
from app.errors import NotFound
from app.models import AuditEvent, Delivery, Post, PostVariant, SocialAccount
from app.schemas.agency import AuditEventPageSchema
from app.schemas.common import PageArgsSchema
from app.schemas.posts import (
    DeleteFromNetworkSchema,
    DeliveryPageSchema,
    PostCreateSchema,
    PostPageSchema,
    PostQueryArgsSchema,
    PostSchema,
    PostUpdateSchema,
    PostVariantPageSchema,
    PostVariantSchema,
    PostVariantUpdateSchema,
    RejectSchema,
    ReviewSchema,
)
from app.services import deliveries, network_deletion, posts, scheduling

blp = Blueprint(
    "posts",
    __name__,
    url_prefix="/v1/brands/<id(brd):brand_id>/posts",
    description="A brand's posts: drafts, variants per account, approval and deliveries",
)


@blp.route("")
class Posts(MethodView):
    @blp.doc(operationId="listPosts")
    @brand_route("posts.read", load_brand=False)
    @blp.arguments(PostQueryArgsSchema, location="query")
    @blp.response(200, PostPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, brand_id):
        """List the brand's posts

        Oldest first, one keyset page at a time. Filter by status, label, campaign and by the
        scheduled time (`from` inclusive, `to` exclusive, RFC 3339 with an offset). The brand's
        client users see only the posts put before them: waiting for their approval, or
        approved and later; never drafts, posts in internal review, rejected or cancelled.
        """
        principal = current_principal()
        rows = posts.list_page_rows(brand_id, args, principal)
        if not rows:
            # Read under the caller's tenant scope, a post on the page proves the brand is
            # there for them; only an empty page needs the brand looked up (404 if it is not).
            tenancy.brand_id_or_404(brand_id)
        return page_response(rows, args, lambda rows: posts.list_items(rows, brand_id, principal))

    @blp.doc(operationId="createPost")
    @brand_route("posts.write")
    @idempotent
    @blp.arguments(PostCreateSchema)
    @blp.response(201, PostSchema, headers=ETAG_HEADER_DOC)
    def post(self, data, brand):
        """Create a draft post

        Text, link, labels, campaign, internal notes, media (in order), the target accounts and
        per-account variants. Each network's own rules are checked when the post is submitted
        for review or scheduled, and the errors name the account and the field.
        """
        post = posts.create_post(brand, current_principal(), data, actor=current_actor())
        return send_etag(post)


@blp.route("/<id(pst):post_id>")
class PostById(MethodView):
    get = operation(
        read_view(blp, "posts.read", PostSchema, load=Post),
        "getPost",
        """One post

        With its variants per account. Internal notes are null for the brand's client users,
        and a post they may not see (see the list) is a 404 for them, on every route.
        """,
    )
    patch = operation(
        update_view(
            blp,
            "posts.write",
            PostUpdateSchema,
            PostSchema,
            posts.update_post,
            load=Post,
            conflict="The post can no longer be edited",
        ),
        "updatePost",
        """Edit a post

        Send the ETag you read as `If-Match` so two people editing one post cannot overwrite
        each other (412). Changing the content (text, link, media, accounts, variants) of an
        approved or scheduled post sends it back to review in brands that review posts.
        """,
    )

    @blp.doc(operationId="deletePost")
    @brand_route("posts.write", load=Post, if_match=True)
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT", description="Not a draft: cancel it instead")
    def delete(self, brand, post):
        """Delete a draft

        Only drafts and rejected drafts are deleted; a post further along is cancelled with
        `POST …/cancel`, which keeps its history.
        """
        posts.delete_post(post, actor=current_actor())


CONTENT_REFUSED = "A target account's network would refuse the post (the errors name it)"


def post_step(
    blp: Blueprint, change: Callable[[Post], Post], conflict: str, *, checks_content: bool = False
) -> Callable:
    """The view of a step in a post's life that takes no body (cancel, submit, queue...):
    `change(post)` by someone who writes posts, If-Match on the post, the post and its new ETag
    in answer, a 409 (`conflict`) when its status does not allow the step. `checks_content`:
    the step may schedule the post, and a target network that would refuse it is a 422."""
    refused_content = (
        blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description=CONTENT_REFUSED)
        if checks_content
        else (lambda view: view)
    )

    @brand_route("posts.write", load=Post, if_match=True, etag=True)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description=conflict)
    @refused_content
    def post(self, brand, post):
        return change(post, actor=current_actor())

    return post


@blp.route("/<id(pst):post_id>/cancel")
class PostCancel(MethodView):
    post = operation(
        post_step(blp, scheduling.cancel, "Publishing already started"),
        "cancelPost",
        """Cancel a post

        Its deliveries that no worker has taken yet are cancelled; the post and its activity
        stay readable.
        """,
    )


@blp.route("/<id(pst):post_id>/delete-from-network")
class PostDeleteFromNetwork(MethodView):
    @blp.doc(operationId="deletePostFromNetwork")
    @brand_route("posts.write", load=Post, if_match=True, etag=True)
    @blp.arguments(DeleteFromNetworkSchema)
    @blp.response(202, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description="Nothing of it is on a network")
    def post(self, data, brand, post):
        """Delete a published post from its networks

        The post is removed from every network it went out on, or only from `account_ids`.
        It happens in the background: its deliveries show `deleting`, then `deleted`, or go
        back to `published` with the network's reason in `last_error` when the network
        refuses (some networks do not let an app delete posts). The post keeps its status and
        its activity records each deletion.
        """
        return network_deletion.request_deletion(
            post, data.get("account_ids"), actor=current_actor()
        )


@blp.route("/<id(pst):post_id>/submit")
class PostSubmit(MethodView):
    post = operation(
        post_step(blp, posts.submit, "Not a draft, or no review here"),
        "submitPost",
        """Submit a draft for review

        Checks the post against each target network first (422 naming account and field),
        then waits for an approver or manager of the agency.
        """,
    )


def _review_step(decide: Callable[[Post, Principal, str | None], Post], body: type) -> Callable:
    """The view of a review step (approve, reject): `decide(post, reviewer, comment)`."""

    @brand_route("posts.approve", load=Post, if_match=True, etag=True)
    @blp.arguments(body)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description="The post is not in review")
    def post(self, data, brand, post):
        return decide(post, current_principal(), data.get("comment"), actor=current_actor())

    return post


@blp.route("/<id(pst):post_id>/approve")
class PostApprove(MethodView):
    post = operation(
        _review_step(posts.approve, ReviewSchema),
        "approvePost",
        """Approve a post in review

        At the internal step: an approver or manager. With approval mode
        `internal_and_client`, the post then waits for one of the brand's client users, who
        approves it here too.
        """,
    )


@blp.route("/<id(pst):post_id>/reject")
class PostReject(MethodView):
    post = operation(
        _review_step(posts.reject, RejectSchema),
        "rejectPost",
        """Reject a post in review

        A comment saying why is required; the post goes back to its author as `rejected`, to
        be edited and submitted again.
        """,
    )


def _post_list(page: type, model: type, statement: Callable[[Post], Select]) -> Callable:
    """The view of one of a post's lists (its activity, deliveries, variants): keyset pages
    of `statement(post)`, by id."""

    @brand_route("posts.read", load=Post)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page, headers=LINK_HEADER_DOC)
    def get(self, args, brand, post):
        return paginate(statement(post), model.id, args)

    return get


def _rows_of_the_post(model: type) -> Callable[[Post], Select]:
    return lambda post: tenancy.scoped_select(model).where(model.post_id == post.id)


@blp.route("/<id(pst):post_id>/activity")
class PostActivity(MethodView):
    get = operation(
        _post_list(AuditEventPageSchema, AuditEvent, posts.activity_statement),
        "listPostActivity",
        """A post's activity

        Every change and review step of the post, oldest first, from the audit trail:
        who did it, when, and the comment of approvals and rejections.
        """,
    )


@blp.route("/<id(pst):post_id>/deliveries")
class PostDeliveries(MethodView):
    @blp.doc(operationId="listPostDeliveries")
    @brand_route("posts.read", load=Post)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, DeliveryPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, brand, post):
        """A post's deliveries

        One per target account once the post is scheduled: its status, when it is next
        tried, the network's id and URL of the published post, the last error (its kind, the
        network's HTTP status and message) and the log of its latest tries. Read-only.
        """
        page = paginate(_rows_of_the_post(Delivery)(post), Delivery.id, args)
        page["items"] = deliveries.with_attempt_log(page["items"])
        return page


@blp.route("/<id(pst):post_id>/variants")
class PostVariants(MethodView):
    get = operation(
        _post_list(PostVariantPageSchema, PostVariant, _rows_of_the_post(PostVariant)),
        "listPostVariants",
        """The post's accounts and variants

        One entry per account the post goes to; `text` and `media_ids` are null where the
        account gets the post's own.
        """,
    )


@blp.route("/<id(pst):post_id>/variants/<id(acc):account_id>")
class PostVariantByAccount(MethodView):
    @blp.doc(operationId="setPostVariant")
    @brand_route("posts.write", load=Post, if_match=True)
    @blp.arguments(PostVariantUpdateSchema)
    @blp.response(200, PostVariantSchema)
    @blp.alt_response(409, response="CONFLICT", description="The post can no longer be edited")
    def put(self, data, brand, post, account_id):
        """Set what the post says on one account

        Adds the account to the post's targets if needed. Null (or absent) `text` or
        `media_ids` means the post's own. Like any content change, this sends approved work
        back to review. `If-Match` takes the post's ETag.
        """
        tenancy.get_in_brand_or_404(SocialAccount, brand.id, account_id, what="account")
        return posts.set_variant(post, account_id, data, actor=current_actor())

    @blp.doc(operationId="removePostVariant")
    @brand_route("posts.write", load=Post, if_match=True)
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT", description="The post can no longer be edited")
    def delete(self, brand, post, account_id):
        """Stop posting to one account

        Removes the account from the post's targets, with its variant. `If-Match` takes the
        post's ETag.
        """
        if account_id not in post.account_ids:
            raise NotFound(f"The post does not go to account '{account_id}'.")
        posts.remove_target(post, account_id, actor=current_actor())
