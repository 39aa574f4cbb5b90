"""Webhook endpoints, their delivery log, and the events they receive."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from app.fields import Text
from app.models import DisabledReason, WebhookDeliveryStatus, WebhookEventType
from app.models.webhook import TEST_EVENT_TYPE
from app.schemas.common import HttpUrl, Id, PageArgsSchema, page_schema

EVENT_TYPES = [t.value for t in WebhookEventType]
MAX_OVERLAP_SECONDS = 7 * 86400


class WebhookEndpointSchema(ma.Schema):
    id = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True, required=True)
    events = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(EVENT_TYPES)),
        allow_none=True,
        required=True,
        metadata={"description": "The event types it receives; null for every type"},
    )
    brand_ids = ma.fields.List(
        ma.fields.String(),
        allow_none=True,
        required=True,
        metadata={"description": "The brands whose events it receives; null for every brand"},
    )
    enabled = ma.fields.Boolean(required=True)
    disabled_reason = ma.fields.String(
        allow_none=True,
        required=True,
        validate=validate.OneOf([r.value for r in DisabledReason]),
        metadata={
            "description": "`manual` (someone disabled it), `gone` (it answered 410) or "
            "`failing` (it failed for too long); null while enabled"
        },
    )
    disabled_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    failing_since = ma.fields.AwareDateTime(
        allow_none=True,
        required=True,
        metadata={"description": "Since when no attempt succeeded; null when the last one did"},
    )
    last_success_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    previous_secret_expires_at = ma.fields.AwareDateTime(
        allow_none=True,
        required=True,
        metadata={"description": "Until then the secret before the last rotation signs too"},
    )
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class WebhookEndpointWithSecretSchema(WebhookEndpointSchema):
    secret = ma.fields.String(
        required=True,
        metadata={
            "description": "The signing secret (`whsec_…`), for Standard Webhooks libraries; "
            "shown this once and never again"
        },
    )


_EVENTS_FIELD = {
    "allow_none": True,
    "validate": validate.Length(min=1, max=len(EVENT_TYPES)),
    "metadata": {"description": "Only these event types; omit or null for every type"},
}
_BRANDS_FIELD = {
    "allow_none": True,
    "validate": validate.Length(min=1, max=500),
    "metadata": {
        "description": "Only events of these brands (events of no brand in particular still "
        "come); omit or null for every brand"
    },
}
_URL_DESCRIPTION = (
    "Where events are POSTed. https, to a public address, unless the server allows private "
    "network targets; redirects are not followed"
)


class WebhookEndpointCreateSchema(ma.Schema):
    url = HttpUrl(required=True, metadata={"description": _URL_DESCRIPTION})
    description = Text(allow_none=True, max_len=500)
    events = ma.fields.List(ma.fields.String(validate=validate.OneOf(EVENT_TYPES)), **_EVENTS_FIELD)
    brand_ids = ma.fields.List(Id("brd"), **_BRANDS_FIELD)
    enabled = ma.fields.Boolean(load_default=True)


class WebhookEndpointUpdateSchema(ma.Schema):
    url = HttpUrl(metadata={"description": _URL_DESCRIPTION})
    description = Text(allow_none=True, max_len=500)
    events = ma.fields.List(ma.fields.String(validate=validate.OneOf(EVENT_TYPES)), **_EVENTS_FIELD)
    brand_ids = ma.fields.List(Id("brd"), **_BRANDS_FIELD)
    enabled = ma.fields.Boolean(
        metadata={"description": "false stops deliveries (pending ones are cancelled)"}
    )


class WebhookSecretRotationSchema(ma.Schema):
    overlap_seconds = ma.fields.Integer(
        validate=validate.Range(min=0, max=MAX_OVERLAP_SECONDS),
        metadata={
            "description": "How long the previous secret keeps signing beside the new one; "
            "0 to stop at once. Omitted: the server's default (24 h unless configured)"
        },
    )


class WebhookDeliverySchema(ma.Schema):
    id = ma.fields.String(required=True)
    endpoint_id = ma.fields.String(required=True)
    event_id = ma.fields.String(
        required=True, metadata={"description": "The event's id, sent as `webhook-id`"}
    )
    event_type = ma.fields.String(required=True)
    status = ma.fields.String(
        required=True, validate=validate.OneOf([s.value for s in WebhookDeliveryStatus])
    )
    attempts = ma.fields.Integer(required=True)
    next_attempt_at = ma.fields.AwareDateTime(
        allow_none=True, required=True, metadata={"description": "Null once it is final"}
    )
    last_attempt_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    last_status_code = ma.fields.Integer(
        allow_none=True,
        required=True,
        metadata={"description": "The endpoint's last answer; null when none came"},
    )
    last_error = ma.fields.String(allow_none=True, required=True)
    succeeded_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    redelivery_of = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The delivery this one sends again, if it is a redelivery"},
    )
    created_at = ma.fields.AwareDateTime(required=True)


class WebhookDeliveryQueryArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=validate.OneOf([s.value for s in WebhookDeliveryStatus]))


WebhookEndpointPageSchema = page_schema(WebhookEndpointSchema, "WebhookEndpointPageSchema")
WebhookDeliveryPageSchema = page_schema(WebhookDeliverySchema, "WebhookDeliveryPageSchema")


# -- what endpoints receive (documentation: the spec's components, no route answers these) ----


class _Received(ma.Schema):
    """A body we send, not one we read: receivers must expect fields to be added, so the spec
    does not close these objects (`additionalProperties` stays open)."""

    class Meta:
        unknown = ma.INCLUDE


class WebhookPostSchema(_Received):
    id = ma.fields.String(required=True)
    brand_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    approval_stage = ma.fields.String(allow_none=True, required=True)
    text = ma.fields.String(required=True)
    link = ma.fields.String(allow_none=True, required=True)
    campaign = ma.fields.String(allow_none=True, required=True)
    account_ids = ma.fields.List(ma.fields.String(), required=True)
    scheduled_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    published_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class WebhookAccountSchema(_Received):
    id = ma.fields.String(required=True)
    brand_id = ma.fields.String(required=True)
    network = ma.fields.String(required=True)
    handle = ma.fields.String(required=True)
    display_name = ma.fields.String(allow_none=True, required=True)
    health = ma.fields.String(required=True)
    last_error = ma.fields.String(allow_none=True, required=True)


class WebhookPublishingDeliverySchema(_Received):
    id = ma.fields.String(required=True)
    post_id = ma.fields.String(required=True)
    account_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    attempts = ma.fields.Integer(required=True)
    external_id = ma.fields.String(allow_none=True, required=True)
    external_url = ma.fields.String(allow_none=True, required=True)
    last_error = ma.fields.String(allow_none=True, required=True)
    scheduled_for = ma.fields.AwareDateTime(allow_none=True, required=True)
    published_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class WebhookEventDataSchema(_Received):
    post = ma.fields.Nested(
        WebhookPostSchema, metadata={"description": "`post.*` events: the post, as it is now"}
    )
    stage = ma.fields.String(
        validate=validate.OneOf(["internal", "client"]),
        metadata={
            "description": "`post.approval_requested`: the review step that now waits; "
            "`post.approved` / `post.rejected`: the step that decided"
        },
    )
    comment = ma.fields.String(
        allow_none=True,
        metadata={"description": "`post.approved` / `post.rejected`: the reviewer's comment"},
    )
    deliveries = ma.fields.List(
        ma.fields.Nested(WebhookPublishingDeliverySchema),
        metadata={
            "description": "`post.published`, `post.partially_published`, `post.failed`, "
            "`post.unknown`: the post's deliveries, one per account"
        },
    )
    account = ma.fields.Nested(
        WebhookAccountSchema,
        metadata={"description": "`account.needs_reconnect`: the account to reconnect"},
    )
    delivery = ma.fields.Nested(
        WebhookPublishingDeliverySchema,
        metadata={"description": "`delivery.failed`: the post's delivery to one account"},
    )
    endpoint_id = ma.fields.String(
        metadata={"description": f"`{TEST_EVENT_TYPE}`: the endpoint tested"}
    )
    message = ma.fields.String(metadata={"description": f"`{TEST_EVENT_TYPE}`: a greeting"})


class WebhookEventSchema(_Received):
    """The JSON body POSTed to an endpoint, signed per Standard Webhooks.

    Headers: `webhook-id` (the event's `id`: the same on every attempt and redelivery, to
    dedupe), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
    (`v1,<base64 HMAC-SHA256>`; two, space-separated, while a rotated secret overlaps). Verify
    with any Standard Webhooks library and the endpoint's `whsec_` secret. Answer 2xx within a
    few seconds; anything else is tried again over about a day, and 410 disables the endpoint.
    """

    id = ma.fields.String(required=True, metadata={"example": "wev_01JD5ZQ7R9X4M2B8C6N3P1T0VW"})
    type = ma.fields.String(required=True, validate=validate.OneOf([*EVENT_TYPES, TEST_EVENT_TYPE]))
    timestamp = ma.fields.AwareDateTime(
        required=True, metadata={"description": "When the event happened"}
    )
    agency_id = ma.fields.String(required=True)
    brand_id = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The brand the event is about; null for the agency's own"},
    )
    data = ma.fields.Nested(WebhookEventDataSchema, required=True)
