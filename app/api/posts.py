from __future__ import annotations

from flask.views import MethodView

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
from app.auth.principal import current_principal
from app.errors import NotFound
from app.models import AuditEvent, Delivery, Post, PostVariant, SocialAccount
from app.schemas.agency import AuditEventPageSchema
from app.schemas.common import PageArgsSchema
from app.schemas.posts import (
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
from app.services import deliveries, posts

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
        post = posts.create_post(brand, current_principal(), data)
        send_etag(post)
        return post


@blp.route("/<id(pst):post_id>")
class PostById(MethodView):
    @blp.doc(operationId="getPost")
    @brand_route("posts.read", load=Post, etag=True)
    @blp.response(200, PostSchema)
    def get(self, brand, post):
        """One post

        With its variants per account. Internal notes are null for the brand's client users,
        and a post they may not see (see the list) is a 404 for them, on every route.
        """
        return post

    @blp.doc(operationId="updatePost")
    @brand_route("posts.write", load=Post, if_match=True, etag=True)
    @blp.arguments(PostUpdateSchema)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description="The post can no longer be edited")
    def patch(self, changes, brand, post):
        """Edit a post

        Send the ETag you read as `If-Match` so two people editing one post cannot overwrite
        each other (412). Changing the content (text, link, media, accounts, variants) of an
        approved or scheduled post sends it back to review in brands that review posts.
        """
        return posts.update_post(post, changes)

    @blp.doc(operationId="deletePost")
    @brand_route("posts.write", load=Post, if_match=True)
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT", description="Not a draft: cancel it instead")
    def delete(self, brand, post):
        """Delete a draft

        Only drafts and rejected drafts are deleted; a post further along is cancelled with
        `POST …/cancel`, which keeps its history.
        """
        posts.delete_post(post)


@blp.route("/<id(pst):post_id>/cancel")
class PostCancel(MethodView):
    @blp.doc(operationId="cancelPost")
    @brand_route("posts.write", load=Post, if_match=True, etag=True)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description="Publishing already started")
    def post(self, brand, post):
        """Cancel a post

        Its deliveries that no worker has taken yet are cancelled; the post and its activity
        stay readable.
        """
        return deliveries.cancel_post(post)


@blp.route("/<id(pst):post_id>/submit")
class PostSubmit(MethodView):
    @blp.doc(operationId="submitPost")
    @brand_route("posts.write", load=Post, if_match=True, etag=True)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description="Not a draft, or no review here")
    def post(self, brand, post):
        """Submit a draft for review

        Checks the post against each target network first (422 naming account and field),
        then waits for an approver or manager of the agency.
        """
        return posts.submit(post)


@blp.route("/<id(pst):post_id>/approve")
class PostApprove(MethodView):
    @blp.doc(operationId="approvePost")
    @brand_route("posts.approve", load=Post, if_match=True, etag=True)
    @blp.arguments(ReviewSchema)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description="The post is not in review")
    def post(self, data, brand, post):
        """Approve a post in review

        At the internal step: an approver or manager. With approval mode
        `internal_and_client`, the post then waits for one of the brand's client users, who
        approves it here too.
        """
        return posts.approve(post, current_principal(), data.get("comment"))


@blp.route("/<id(pst):post_id>/reject")
class PostReject(MethodView):
    @blp.doc(operationId="rejectPost")
    @brand_route("posts.approve", load=Post, if_match=True, etag=True)
    @blp.arguments(RejectSchema)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description="The post is not in review")
    def post(self, data, brand, post):
        """Reject a post in review

        A comment saying why is required; the post goes back to its author as `rejected`, to
        be edited and submitted again.
        """
        return posts.reject(post, current_principal(), data["comment"])


@blp.route("/<id(pst):post_id>/activity")
class PostActivity(MethodView):
    @blp.doc(operationId="listPostActivity")
    @brand_route("posts.read", load=Post)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, AuditEventPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, brand, post):
        """A post's activity

        Every change and review step of the post, oldest first, from the audit trail:
        who did it, when, and the comment of approvals and rejections.
        """
        return paginate(posts.activity_statement(post), AuditEvent.id, args)


@blp.route("/<id(pst):post_id>/deliveries")
class PostDeliveries(MethodView):
    @blp.doc(operationId="listPostDeliveries")
    @brand_route("posts.read", load=Post)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, DeliveryPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, brand, post):
        """A post's deliveries

        One per target account once the post is scheduled: status, attempts, the network's id
        and URL of the published post, and the last error. Read-only.
        """
        stmt = tenancy.scoped_select(Delivery).where(Delivery.post_id == post.id)
        return paginate(stmt, Delivery.id, args)


@blp.route("/<id(pst):post_id>/variants")
class PostVariants(MethodView):
    @blp.doc(operationId="listPostVariants")
    @brand_route("posts.read", load=Post)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, PostVariantPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, brand, post):
        """The post's accounts and variants

        One entry per account the post goes to; `text` and `media_ids` are null where the
        account gets the post's own.
        """
        stmt = tenancy.scoped_select(PostVariant).where(PostVariant.post_id == post.id)
        return paginate(stmt, PostVariant.id, args)


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
        return posts.set_variant(post, account_id, data)

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
        posts.remove_target(post, account_id)
