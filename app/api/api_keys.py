from __future__ import annotations

from flask.views import MethodView

from app import tenancy
from app.api.http import Blueprint, paginate
from app.api.idempotency import idempotent
from app.auth import permissions
from app.auth.principal import current_actor, current_principal
from app.models import ApiKey
from app.schemas.agency import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyPageSchema,
    ApiKeySchema,
)
from app.schemas.common import PageArgsSchema
from app.services import api_keys

blp = Blueprint("api_keys", __name__, url_prefix="/v1/api-keys", description="Agency API keys")


@blp.route("")
class ApiKeys(MethodView):
    @blp.doc(operationId="listApiKeys")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, ApiKeyPageSchema)
    def get(self, args):
        """List the agency's API keys

        Owners and admins, signed in as a person. Keys are listed with their prefix, brands and last
        use, never their secrets; revoked keys stay listed with `revoked_at`.
        """
        permissions.require(current_principal(), "api_keys.manage")
        return paginate(tenancy.scoped_select(ApiKey), ApiKey.id, args)

    @blp.doc(operationId="createApiKey")
    @idempotent
    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeyCreatedSchema)
    def post(self, data):
        """Create an API key

        Owners and admins, signed in as a person. The secret is in the response once and never
        again; send it as `X-API-Key`. A key limited to some brands acts as a manager of those
        brands only; unknown brand ids are a 404.
        """
        principal = current_principal()
        permissions.require(principal, "api_keys.manage")
        created = api_keys.create_key(
            principal.agency_id,
            name=data["name"],
            brand_ids=data.get("brand_ids"),
            created_by=principal.user_id,
            actor=current_actor(),
        )
        # Raw attributes, not a dump: the response schema serialises them (once).
        shown = {name: getattr(created.key, name) for name in ApiKeySchema().fields}
        return {**shown, "key": created.secret}


@blp.route("/<id(key):key_id>")
class ApiKeyById(MethodView):
    @blp.doc(operationId="getApiKey")
    @blp.response(200, ApiKeySchema)
    def get(self, key_id):
        """One API key

        Owners and admins, signed in as a person. The secret is never shown again; a key of another
        agency is a 404.
        """
        # Load first: another agency's key is a 404 whatever the caller's role.
        key = tenancy.get_or_404(ApiKey, key_id, what="API key")
        permissions.require(current_principal(), "api_keys.manage")
        return key

    @blp.doc(operationId="revokeApiKey")
    @blp.response(204)
    def delete(self, key_id):
        """Revoke an API key

        Owners and admins, signed in as a person. The key stops working at once and cannot be
        restored; create a new one instead.
        """
        key = tenancy.get_or_404(ApiKey, key_id, what="API key")
        permissions.require(current_principal(), "api_keys.manage")
        api_keys.revoke_key(key, actor=current_actor())
