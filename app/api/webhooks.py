"""Webhook endpoints of the agency: CRUD, secret rotation, test events, the delivery log."""

from __future__ import annotations

import inspect
from typing import Any

from flask.views import MethodView

from app import tenancy
from app.api.http import (
    ETAG_HEADER_DOC,
    IF_MATCH_PARAMETER,
    LINK_HEADER_DOC,
    Blueprint,
    check_if_match,
    paginate,
    send_etag,
)
from app.api.idempotency import idempotent
from app.auth import permissions
from app.auth.principal import current_actor, current_principal
from app.models import WebhookDelivery, WebhookEndpoint
from app.schemas.common import PageArgsSchema
from app.schemas.webhooks import (
    WebhookDeliveryPageSchema,
    WebhookDeliveryQueryArgsSchema,
    WebhookDeliverySchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointPageSchema,
    WebhookEndpointSchema,
    WebhookEndpointUpdateSchema,
    WebhookEndpointWithSecretSchema,
    WebhookEventSchema,
    WebhookSecretRotationSchema,
)
from app.services import webhook_endpoints

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1/webhook-endpoints",
    description="Outgoing webhooks: signed events (Standard Webhooks) POSTed to the agency's URLs",
)


_SIGNATURE_HEADERS = {
    "webhook-id": "The event's `id`: the same on every attempt and redelivery (dedupe on it)",
    "webhook-timestamp": "When this attempt was signed, in Unix seconds",
    "webhook-signature": "`v1,<base64 HMAC-SHA256>`, one per secret (two, space-separated, "
    "while a rotated secret overlaps)",
}


def document_event_body(api: Any) -> None:
    """What endpoints receive is no route's answer: the spec states it as OpenAPI 3.1's
    `webhooks` (one request we send), with its body as the `WebhookEvent` component, for
    receivers to generate types from."""
    description = inspect.cleandoc(WebhookEventSchema.__doc__ or "")
    api.spec.components.schema(
        "WebhookEvent", component={"description": description}, schema=WebhookEventSchema
    )
    body = {"$ref": "#/components/schemas/WebhookEvent"}
    api.spec.options["webhooks"] = {
        "event": {
            "post": {
                "operationId": "receiveWebhookEvent",
                "summary": "An event, POSTed to each endpoint that takes it",
                "description": description,
                # Signed (see the headers), not authenticated with the API's credentials.
                "security": [],
                "parameters": [
                    {
                        "in": "header",
                        "name": name,
                        "required": True,
                        "schema": {"type": "string"},
                        "description": text,
                    }
                    for name, text in _SIGNATURE_HEADERS.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "200": {"description": "Received (any 2xx counts)"},
                    "410": {"description": "Gone: Relais disables the endpoint"},
                },
            }
        }
    }


def _endpoint_or_404(endpoint_id: str) -> WebhookEndpoint:
    # The permission first: whoever may not manage endpoints gets the same 403 for any id, so
    # it learns nothing about which exist (in its agency or another); whoever may gets 404 for
    # another agency's endpoint, as for one that never existed.
    permissions.require(current_principal(), "webhooks.manage")
    return tenancy.get_or_404(WebhookEndpoint, endpoint_id, what="webhook endpoint")


def _with_secret(shown: webhook_endpoints.EndpointWithSecret) -> dict:
    # Raw attributes, not a dump: the response schema serialises them (once).
    fields = WebhookEndpointSchema().fields
    return {**{name: getattr(shown.endpoint, name) for name in fields}, "secret": shown.secret}


@blp.route("")
class WebhookEndpoints(MethodView):
    @blp.doc(operationId="listWebhookEndpoints")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, WebhookEndpointPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args):
        """List the agency's webhook endpoints

        Agency owners and admins, and API keys not limited to some brands. Secrets are never
        listed.
        """
        permissions.require(current_principal(), "webhooks.manage")
        return paginate(tenancy.scoped_select(WebhookEndpoint), WebhookEndpoint.id, args)

    @blp.doc(operationId="createWebhookEndpoint")
    @idempotent
    @blp.arguments(WebhookEndpointCreateSchema)
    @blp.response(201, WebhookEndpointWithSecretSchema, headers=ETAG_HEADER_DOC)
    def post(self, data):
        """Create a webhook endpoint

        Agency owners and admins, and API keys not limited to some brands. Events are POSTed to
        `url` as JSON (the `WebhookEvent` schema), signed per Standard Webhooks with the
        `secret` of the response, shown this once. Limit it to some event types (`events`)
        and some brands (`brand_ids`; unknown ids are a 404); a URL the outbound guard refuses
        (private addresses, plain http in production) is a 422.
        """
        principal = current_principal()
        permissions.require(principal, "webhooks.manage")
        created = webhook_endpoints.create_endpoint(
            principal.agency_id, data, created_by=principal.user_id, actor=current_actor()
        )
        send_etag(created.endpoint)
        return _with_secret(created)


@blp.route("/<id(whk):endpoint_id>")
class WebhookEndpointById(MethodView):
    @blp.doc(operationId="getWebhookEndpoint")
    @blp.response(200, WebhookEndpointSchema, headers=ETAG_HEADER_DOC)
    def get(self, endpoint_id):
        """One webhook endpoint

        Agency owners and admins, and API keys not limited to some brands. Its secret is never
        shown again (rotate it for a new one). The ETag is for `If-Match` on PATCH.
        """
        endpoint = _endpoint_or_404(endpoint_id)
        send_etag(endpoint)
        return endpoint

    @blp.doc(operationId="updateWebhookEndpoint")
    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(WebhookEndpointUpdateSchema)
    @blp.response(200, WebhookEndpointSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale")
    def patch(self, changes, endpoint_id):
        """Change a webhook endpoint

        Its URL, description, event types and brands; `enabled: false` stops it (what it had
        still to receive is cancelled), `enabled: true` starts it again, after it was disabled
        by hand or by failures. Send the ETag you read as `If-Match` (412 if it is stale).
        """
        endpoint = _endpoint_or_404(endpoint_id)
        check_if_match(endpoint)
        webhook_endpoints.update_endpoint(endpoint, changes, actor=current_actor())
        send_etag(endpoint)
        return endpoint

    @blp.doc(operationId="deleteWebhookEndpoint")
    @blp.response(204)
    def delete(self, endpoint_id):
        """Delete a webhook endpoint

        With its delivery log; what it had still to receive is not sent.
        """
        webhook_endpoints.delete_endpoint(_endpoint_or_404(endpoint_id), actor=current_actor())


@blp.route("/<id(whk):endpoint_id>/rotate-secret")
class WebhookEndpointSecretRotation(MethodView):
    @blp.doc(operationId="rotateWebhookEndpointSecret")
    @blp.arguments(WebhookSecretRotationSchema)
    @blp.response(200, WebhookEndpointWithSecretSchema, headers=ETAG_HEADER_DOC)
    def post(self, data, endpoint_id):
        """Rotate a webhook endpoint's signing secret

        The new secret is in the response, this once. For `overlap_seconds` (24 h by default)
        each message carries two signatures, one per secret, so the receiver can switch to the
        new secret at any time in between; then only the new one signs.
        """
        endpoint = _endpoint_or_404(endpoint_id)
        secret = webhook_endpoints.rotate_secret(
            endpoint, data.get("overlap_seconds"), actor=current_actor()
        )
        send_etag(endpoint)
        return _with_secret(webhook_endpoints.EndpointWithSecret(endpoint, secret))


@blp.route("/<id(whk):endpoint_id>/test")
class WebhookEndpointTest(MethodView):
    @blp.doc(operationId="testWebhookEndpoint")
    @blp.response(202, WebhookDeliverySchema)
    @blp.alt_response(409, response="CONFLICT", description="The endpoint is disabled")
    def post(self, endpoint_id):
        """Send a test event to a webhook endpoint

        A `webhook.test` event, to this endpoint only, whatever its filters; follow the
        delivery in the endpoint's delivery log.
        """
        return webhook_endpoints.send_test(_endpoint_or_404(endpoint_id), actor=current_actor())


@blp.route("/<id(whk):endpoint_id>/deliveries")
class WebhookEndpointDeliveries(MethodView):
    @blp.doc(operationId="listWebhookDeliveries")
    @blp.arguments(WebhookDeliveryQueryArgsSchema, location="query")
    @blp.response(200, WebhookDeliveryPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, endpoint_id):
        """A webhook endpoint's delivery log

        Every event sent to it, oldest first: attempts, the last answer's status code and
        error, and when the next attempt is due. Filter by `status`. Kept 30 days by default.
        """
        endpoint = _endpoint_or_404(endpoint_id)
        return paginate(
            webhook_endpoints.deliveries_statement(endpoint, args), WebhookDelivery.id, args
        )


@blp.route("/<id(whk):endpoint_id>/deliveries/<id(wdl):delivery_id>/redeliver")
class WebhookDeliveryRedelivery(MethodView):
    @blp.doc(operationId="redeliverWebhookDelivery")
    @blp.response(202, WebhookDeliverySchema)
    @blp.alt_response(
        409, response="CONFLICT", description="Still being attempted, or the endpoint is disabled"
    )
    def post(self, endpoint_id, delivery_id):
        """Send a delivery's event again

        As a new delivery with attempts of its own, and the same `webhook-id`, so a receiver
        that got it the first time can tell.
        """
        return webhook_endpoints.redeliver(
            _endpoint_or_404(endpoint_id), delivery_id, actor=current_actor()
        )
