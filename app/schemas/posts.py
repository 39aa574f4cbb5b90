from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import g
from marshmallow import validate

from app.fields import Name, Text, Timestamp
from app.models import ApprovalStage, BrandRole, DeliveryErrorKind, DeliveryStatus, PostStatus
from app.models.post import MAX_TEXT
from app.schemas.common import HttpUrl, Id, PageArgsSchema, page_schema

MAX_TARGETS = 50
MAX_MEDIA = 20


class StaffOnlyText(ma.fields.String):
    """Shown to agency staff; null for the brand's client users (internal notes)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        principal = g.get("principal")
        if principal is not None and principal.brand_roles.get(obj.brand_id) == BrandRole.CLIENT:
            return None
        return super()._serialize(value, attr, obj, **kwargs)


class PostVariantSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "pvr_01JD5ZQ7R9X4M2B8C6N3P1T0VW"})
    account_id = ma.fields.String(required=True)
    text = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "null: the post's own text"}
    )
    media_ids = ma.fields.List(
        ma.fields.String(),
        allow_none=True,
        required=True,
        metadata={"description": "null: the post's own media"},
    )


class PostSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "pst_01JD5ZQ7R9X4M2B8C6N3P1T0VW"})
    brand_id = ma.fields.String(required=True)
    text = ma.fields.String(required=True)
    link = ma.fields.String(allow_none=True, required=True)
    labels = ma.fields.List(ma.fields.String(), required=True)
    campaign = ma.fields.String(allow_none=True, required=True)
    internal_notes = StaffOnlyText(
        allow_none=True,
        required=True,
        metadata={"description": "Staff-only notes; always null for the brand's client users"},
    )
    status = ma.fields.String(required=True, validate=validate.OneOf([s.value for s in PostStatus]))
    approval_stage = ma.fields.String(
        allow_none=True,
        required=True,
        validate=validate.OneOf([s.value for s in ApprovalStage]),
        metadata={"description": "While in_review: whose approval the post waits for"},
    )
    review_comment = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "Why it was last rejected"}
    )
    media_ids = ma.fields.List(ma.fields.String(), required=True)
    account_ids = ma.fields.List(ma.fields.String(), required=True)
    variants = ma.fields.List(ma.fields.Nested(PostVariantSchema), required=True)
    scheduled_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    published_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    created_by_user_id = ma.fields.String(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class PostVariantUpdateSchema(ma.Schema):
    text = Text(
        allow_none=True,
        max_len=MAX_TEXT,
        metadata={"description": "Another text for this account; null or absent: the post's"},
    )
    media_ids = ma.fields.List(
        Id("med"),
        allow_none=True,
        validate=validate.Length(max=MAX_MEDIA),
        metadata={"description": "Other media for this account ([] for none); null: the post's"},
    )


class PostVariantInputSchema(PostVariantUpdateSchema):
    account_id = Id("acc", required=True)


class _VariantList(ma.fields.List):
    """Variants, at most one per account: when an account comes twice, the last one counts, as
    for a key repeated in a JSON object (a rule JSON Schema cannot state as a refusal)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        variants = super()._deserialize(value, attr, data, **kwargs)
        by_account = {variant["account_id"]: variant for variant in variants}
        return list(by_account.values())


class _PostFields(ma.Schema):
    text = Text(max_len=MAX_TEXT)
    link = HttpUrl(allow_none=True)
    labels = ma.fields.List(Name(max_len=100), validate=validate.Length(max=50))
    campaign = Name(allow_none=True)
    internal_notes = Text(allow_none=True, max_len=10_000)
    media_ids = ma.fields.List(Id("med"), validate=validate.Length(max=MAX_MEDIA))
    account_ids = ma.fields.List(
        Id("acc"),
        validate=validate.Length(max=MAX_TARGETS),
        metadata={"description": "The brand's social accounts this post goes to"},
    )
    variants = _VariantList(
        ma.fields.Nested(PostVariantInputSchema),
        validate=validate.Length(max=MAX_TARGETS),
        metadata={
            "description": (
                "Per-account text or media; replaces all earlier variants. One per account: "
                "if an account comes twice, the last one counts."
            )
        },
    )


class PostCreateSchema(_PostFields):
    text = Text(load_default="", max_len=MAX_TEXT)


class PostUpdateSchema(_PostFields):
    pass


class PostQueryArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=validate.OneOf([s.value for s in PostStatus]))
    label = Text(min_len=1, max_len=100)
    campaign = Text(min_len=1, max_len=200)
    from_ = Timestamp(
        data_key="from", metadata={"description": "Scheduled at or after this instant"}
    )
    to = Timestamp(metadata={"description": "Scheduled before this instant"})


class ReviewSchema(ma.Schema):
    comment = Text(allow_none=True, max_len=5000)


class RejectSchema(ma.Schema):
    comment = Text(required=True, min_len=1, max_len=5000, metadata={"description": "Why"})


_ERROR_KINDS = [k.value for k in DeliveryErrorKind]
_ERROR_KINDS_DOC = (
    "What kind of trouble: `transient` (the network was down or slow; tried again), "
    "`rate_limited` (the network asked to slow down; the account's posts wait), `rejected` "
    "(the network refused this post: change it), `credentials` (reconnect the account), "
    "`unknown` (sent, no answer: the network is asked whether the post exists), "
    "`unverifiable` (the network cannot be asked: check the account there), `internal` "
    "(on the server's side)."
)


class DeliveryAttemptSchema(ma.Schema):
    number = ma.fields.Integer(required=True, metadata={"description": "1 for the first try"})
    action = ma.fields.String(
        required=True,
        validate=validate.OneOf(["publish", "reconcile"]),
        metadata={
            "description": "`publish`, or `reconcile`: asking the network whether an earlier "
            "try made the post (and publishing it if not)"
        },
    )
    outcome = ma.fields.String(
        required=True,
        validate=validate.OneOf(["published", "found", "retry", "failed", "unknown"]),
        metadata={
            "description": "`found`: the reconciler found the post an earlier try made; "
            "`retry`: tried again at `retry_at`"
        },
    )
    error_kind = ma.fields.String(
        allow_none=True,
        required=True,
        validate=validate.OneOf(_ERROR_KINDS),
        metadata={"description": _ERROR_KINDS_DOC},
    )
    status_code = ma.fields.Integer(
        allow_none=True, required=True, metadata={"description": "The network's HTTP status"}
    )
    error = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "What went wrong, in the network's own words where it said"},
    )
    started_at = ma.fields.AwareDateTime(required=True)
    finished_at = ma.fields.AwareDateTime(required=True)
    retry_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class DeliverySchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "dlv_01JD5ZQ7R9X4M2B8C6N3P1T0VW"})
    post_id = ma.fields.String(required=True)
    account_id = ma.fields.String(required=True)
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf([s.value for s in DeliveryStatus]),
        metadata={
            "description": "`scheduled` (waiting, also between retries), `queued` (claimed a "
            "moment before it is due; still cancellable), `publishing`, `published`, `failed`, "
            "`unknown` (sent without an answer: being checked, or for a person to check when "
            "`next_attempt_at` is null), `cancelled`"
        },
    )
    attempts = ma.fields.Integer(required=True, metadata={"description": "Tries made so far"})
    external_id = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The post's id on the network"}
    )
    external_url = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The post on the network"}
    )
    last_error = ma.fields.String(allow_none=True, required=True)
    last_error_kind = ma.fields.String(
        allow_none=True,
        required=True,
        validate=validate.OneOf(_ERROR_KINDS),
        metadata={"description": _ERROR_KINDS_DOC},
    )
    last_status_code = ma.fields.Integer(allow_none=True, required=True)
    scheduled_for = ma.fields.AwareDateTime(allow_none=True, required=True)
    next_attempt_at = ma.fields.AwareDateTime(
        allow_none=True,
        required=True,
        metadata={
            "description": "When the next try is due (a retry), or when the network is next "
            "asked about an unknown outcome; null when nothing more is planned"
        },
    )
    first_attempt_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    last_attempt_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    published_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    attempt_log = ma.fields.List(
        ma.fields.Nested(DeliveryAttemptSchema),
        required=True,
        metadata={"description": "The latest tries (up to 20), oldest first"},
    )
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class DeleteFromNetworkSchema(ma.Schema):
    account_ids = ma.fields.List(
        ma.fields.String(),
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "Only from these accounts; by default, from every account the post "
            "went out on"
        },
    )


PostPageSchema = page_schema(PostSchema, "PostPageSchema")
PostVariantPageSchema = page_schema(PostVariantSchema, "PostVariantPageSchema")
DeliveryPageSchema = page_schema(DeliverySchema, "DeliveryPageSchema")
