"""Webhook endpoints of the agency: CRUD, secret rotation, test events, the delivery log."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
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


def endpoint_route(*, if_match: bool = False, etag: bool = False) -> Callable[[Callable], Callable]:
    """The preamble of the routes under `/v1/webhook-endpoints/<endpoint_id>`, as `brand_route`
    is for brands; stack it above `@idempotent`, `@blp.arguments` and `@blp.response`.

    Before the body or query is read: a 403 for whoever may not manage endpoints, the same for
    any id (so nothing is learned of which exist, in the agency or another); then a 404 for an
    endpoint that is not the caller's agency's, as for one that never existed; then, with
    `if_match`, a 412 for a stale `If-Match` (RFC 9110: preconditions before the content).
    The view gets `endpoint` in place of its id; `etag`: the response carries its ETag, as it
    is after the view. The If-Match parameter and the 412 are documented by `IF_MATCH_DOC`.
    """

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            permissions.require(current_principal(), "webhooks.manage")
            endpoint = tenancy.get_or_404(
                WebhookEndpoint, kwargs.pop("endpoint_id"), what="webhook endpoint"
            )
            if if_match:
                check_if_match(endpoint)
            if etag:
                send_etag(endpoint)
            return func(*args, endpoint=endpoint, **kwargs)

        return wrapper

    return decorate


def if_match_doc(func: Callable) -> Callable:
    """The optional If-Match header, and the 412 a stale one gets (`endpoint_route`)."""
    func = blp.doc(parameters=[IF_MATCH_PARAMETER])(func)
    return blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale")(
        func
    )


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
    @endpoint_route(etag=True)
    @blp.response(200, WebhookEndpointSchema, headers=ETAG_HEADER_DOC)
    def get(self, endpoint):
        """One webhook endpoint

        Agency owners and admins, and API keys not limited to some brands. Its secret is never
        shown again (rotate it for a new one). The ETag is for `If-Match` on the changes.
        """
        return endpoint

    @blp.doc(operationId="updateWebhookEndpoint")
    @if_match_doc
    @endpoint_route(if_match=True, etag=True)
    @blp.arguments(WebhookEndpointUpdateSchema)
    @blp.response(200, WebhookEndpointSchema, headers=ETAG_HEADER_DOC)
    def patch(self, changes, endpoint):
        """Change a webhook endpoint

        Its URL, description, event types and brands; `enabled: false` stops it (what it had
        still to receive is cancelled), `enabled: true` starts it again, after it was disabled
        by hand or by failures. Send the ETag you read as `If-Match` (412 if it is stale).
        """
        return webhook_endpoints.update_endpoint(endpoint, changes, actor=current_actor())

    @blp.doc(operationId="deleteWebhookEndpoint")
    @if_match_doc
    @endpoint_route(if_match=True)
    @blp.response(204)
    def delete(self, endpoint):
        """Delete a webhook endpoint

        With its delivery log; what it had still to receive is not sent.
        """
        webhook_endpoints.delete_endpoint(endpoint, actor=current_actor())


@blp.route("/<id(whk):endpoint_id>/rotate-secret")
class WebhookEndpointSecretRotation(MethodView):
    @blp.doc(operationId="rotateWebhookEndpointSecret")
    @if_match_doc
    @endpoint_route(if_match=True, etag=True)
    @blp.arguments(WebhookSecretRotationSchema)
    @blp.response(200, WebhookEndpointWithSecretSchema, headers=ETAG_HEADER_DOC)
    def post(self, data, endpoint):
        """Rotate a webhook endpoint's signing secret

        The new secret is in the response, this once. For `overlap_seconds` (24 h by default)
        each message carries two signatures, one per secret, so the receiver can switch to the
        new secret at any time in between; then only the new one signs.
        """
        secret = webhook_endpoints.rotate_secret(
            endpoint, data.get("overlap_seconds"), actor=current_actor()
        )
        return _with_secret(webhook_endpoints.EndpointWithSecret(endpoint, secret))


@blp.route("/<id(whk):endpoint_id>/test")
class WebhookEndpointTest(MethodView):
    @blp.doc(operationId="testWebhookEndpoint")
    @endpoint_route()
    @blp.response(202, WebhookDeliverySchema)
    @blp.alt_response(409, response="CONFLICT", description="The endpoint is disabled")
    def post(self, endpoint):
        """Send a test event to a webhook endpoint

        A `webhook.test` event, to this endpoint only, whatever its filters; follow the
        delivery in the endpoint's delivery log.
        """
        return webhook_endpoints.send_test(endpoint, actor=current_actor())


@blp.route("/<id(whk):endpoint_id>/deliveries")
class WebhookEndpointDeliveries(MethodView):
    @blp.doc(operationId="listWebhookDeliveries")
    @endpoint_route()
    @blp.arguments(WebhookDeliveryQueryArgsSchema, location="query")
    @blp.response(200, WebhookDeliveryPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, endpoint):
        """A webhook endpoint's delivery log

        Every event sent to it, oldest first: attempts, the last answer's status code and
        error, and when the next attempt is due. Filter by `status`. Kept 30 days by default.
        """
        return paginate(
            webhook_endpoints.deliveries_statement(endpoint, args), WebhookDelivery.id, args
        )


@blp.route("/<id(whk):endpoint_id>/deliveries/<id(wdl):delivery_id>/redeliver")
class WebhookDeliveryRedelivery(MethodView):
    @blp.doc(operationId="redeliverWebhookDelivery")
    @endpoint_route()
    @blp.response(202, WebhookDeliverySchema)
    @blp.alt_response(
        409, response="CONFLICT", description="Still being attempted, or the endpoint is disabled"
    )
    def post(self, endpoint, delivery_id):
        """Send a delivery's event again

        As a new delivery with attempts of its own, and the same `webhook-id`, so a receiver
        that got it the first time can tell.
        """
        return webhook_endpoints.redeliver(endpoint, delivery_id, actor=current_actor())
