"""A brand's connected social accounts."""

from __future__ import annotations

from flask.views import MethodView

from app.api.http import ETAG_HEADER_DOC, Blueprint, brand_route, paginate, send_etag
from app.api.idempotency import idempotent
from app.api.views import operation, read_view, update_view
from app.auth.principal import current_actor, current_principal
from app.models import SocialAccount
from app.schemas.accounts import (
    AccountListSchema,
    AccountPageSchema,
    AccountQueryArgsSchema,
    AccountSchema,
    AccountUpdateSchema,
    AuthorizationSchema,
    CallbackSchema,
    ConnectSchema,
    DirectConnectSchema,
    ReconnectResultSchema,
    ReconnectSchema,
)
from app.services import accounts

blp = Blueprint(
    "accounts",
    __name__,
    url_prefix="/v1/brands/<id(brd):brand_id>/accounts",
    description="A brand's connected social accounts (credentials never leave the server)",
)


# The routes that call the network: what it refused (422) or did not answer (502).
_NETWORK_SILENT = {"response": "BAD_GATEWAY", "description": "The network did not answer"}


def _invalid(description: str) -> dict[str, str]:
    return {"response": "UNPROCESSABLE_ENTITY", "description": description}


@blp.route("")
class Accounts(MethodView):
    @blp.doc(operationId="listAccounts")
    @brand_route("accounts.read")
    @blp.arguments(AccountQueryArgsSchema, location="query")
    @blp.response(200, AccountPageSchema)
    def get(self, args, brand):
        """List the brand's social accounts

        Every account the brand connected, disconnected ones included (health `revoked`), so
        their history stays readable. Filter by `network` or `health`.
        """
        stmt = accounts.list_statement(
            brand.id, network=args.get("network"), health=args.get("health")
        )
        return paginate(stmt, SocialAccount.id, args)

    @blp.doc(operationId="connectAccount")
    @brand_route("accounts.manage")
    @idempotent
    @blp.arguments(DirectConnectSchema)
    @blp.response(201, AccountSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(422, **_invalid("Invalid input, or the network refused the credentials"))
    @blp.alt_response(502, **_NETWORK_SILENT)
    def post(self, data, brand):
        """Connect an account with credentials (Bluesky, Mastodon)

        Bluesky: `handle` and an app password (and `pds_url` for a self-hosted PDS); the
        password opens a session and is never stored. Mastodon: `instance_url` and an access
        token made in the instance's Development settings. The credentials are checked with
        the network before anything is saved. An account the brand already had is reconnected
        in place.
        """
        account = accounts.connect_direct(brand, current_principal(), data, actor=current_actor())
        return send_etag(account)


@blp.route("/connect")
class AccountConnect(MethodView):
    @blp.doc(operationId="startAccountConnection")
    @brand_route("accounts.manage")
    @blp.arguments(ConnectSchema)
    @blp.response(200, AuthorizationSchema)
    @blp.alt_response(502, response="BAD_GATEWAY", description="The instance did not answer")
    def post(self, data, brand):
        """Start connecting an account through OAuth (Mastodon, LinkedIn, X, Facebook, Instagram)

        Returns the network's authorization URL. The `state` in it is bound to this brand and
        to you, works once and expires (`expires_at`); PKCE is used where the network supports
        it. After the person approves, the network sends the browser to the configured
        redirect URI with `code` and `state`: post both to `…/accounts/callback`.
        """
        return accounts.start_authorization(
            brand,
            current_principal(),
            data["network"],
            instance_url=data.get("instance_url"),
            account_kind=data.get("account_kind"),
        )


@blp.route("/callback")
class AccountCallback(MethodView):
    @blp.doc(operationId="finishAccountConnection")
    @brand_route("accounts.manage")
    @blp.arguments(CallbackSchema)
    @blp.response(200, AccountListSchema)
    @blp.alt_response(409, response="CONFLICT", description="This state was already used")
    @blp.alt_response(422, **_invalid("Unknown or expired state, or the network refused the code"))
    @blp.alt_response(502, **_NETWORK_SILENT)
    def post(self, data, brand):
        """Finish an OAuth connection: exchange the code

        Send the `code` and `state` (or the `error`) the network sent back. The state must be
        one you started on this brand, unused and unexpired. Returns the connected accounts:
        one, or one per page for LinkedIn organizations, Facebook and Instagram.
        """
        saved = accounts.complete_authorization(
            brand,
            current_principal(),
            state=data["state"],
            code=data.get("code"),
            error=data.get("error"),
            actor=current_actor(),
        )
        return {"items": saved}


@blp.route("/<id(acc):account_id>")
class AccountById(MethodView):
    get = operation(
        read_view(blp, "accounts.read", AccountSchema, load=SocialAccount),
        "getAccount",
        """One social account

        Its network identity, health and display settings; never its credentials.
        """,
    )
    patch = operation(
        update_view(
            blp,
            "accounts.manage",
            AccountUpdateSchema,
            AccountSchema,
            accounts.update_display,
            load=SocialAccount,
        ),
        "updateAccount",
        """Change an account's display settings

        Your `label` for it and its `color` in calendars. Send the ETag you read as `If-Match`
        to be sure not to overwrite someone else's change.
        """,
    )

    @blp.doc(operationId="disconnectAccount")
    @brand_route("accounts.manage", load=SocialAccount, if_match=True)
    @blp.response(204)
    def delete(self, brand, account):
        """Disconnect an account

        Revokes the credentials at the network where it allows (best effort) and forgets them
        here. The account stays listed with health `revoked`, with its history; reconnect it
        with `POST …/reconnect`.
        """
        accounts.disconnect(account, actor=current_actor())


@blp.route("/<id(acc):account_id>/reconnect")
class AccountReconnect(MethodView):
    @blp.doc(operationId="reconnectAccount")
    @brand_route("accounts.manage", load=SocialAccount, if_match=True)
    @blp.arguments(ReconnectSchema)
    @blp.response(200, ReconnectResultSchema)
    @blp.alt_response(
        409, response="CONFLICT", description="The credentials belong to another network account"
    )
    @blp.alt_response(422, **_invalid("Missing credentials, or the network refused them"))
    @blp.alt_response(502, **_NETWORK_SILENT)
    def post(self, data, brand, account):
        """Reconnect an account, keeping its history

        Bluesky takes a new app password (and Mastodon may take a new access token): the
        account is reconnected at once. OAuth networks return an `authorization` to finish
        through `…/accounts/callback`, which must sign in as the same network account.
        """
        result = accounts.reconnect(
            brand, current_principal(), account, data, actor=current_actor()
        )
        return {"account": result.account, "authorization": result.authorization}
