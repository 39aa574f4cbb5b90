"""A brand's connected social accounts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask.views import MethodView

from app import tenancy
from app.api.http import (
    ETAG_HEADER_DOC,
    IF_MATCH_PARAMETER,
    Blueprint,
    check_if_match,
    idempotent,
    paginate,
    send_etag,
)
from app.auth import permissions
from app.auth.principal import current_actor, current_principal
from app.models import Brand, SocialAccount
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


def _brand(brand_id: str, permission: str) -> Brand:
    brand = tenancy.get_brand_or_404(brand_id)
    permissions.require(current_principal(), permission, brand.id)
    return brand


def _account(brand_id: str, account_id: str, permission: str) -> tuple[Brand, SocialAccount]:
    brand = _brand(brand_id, permission)
    account = tenancy.get_in_brand_or_404(
        SocialAccount, brand.id, account_id, what="social account"
    )
    return brand, account


def _reach_first(permission: str) -> Callable[[Callable], Callable]:
    """Answer 404 (another tenant's brand or account) and 403 before the body is validated,
    so what a caller sends never changes what it learns about others' ids."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if "account_id" in kwargs:
                _account(kwargs["brand_id"], kwargs["account_id"], permission)
            else:
                _brand(kwargs["brand_id"], permission)
            return func(*args, **kwargs)

        return wrapper

    return decorate


@blp.route("")
class Accounts(MethodView):
    @blp.doc(operationId="listAccounts")
    @blp.arguments(AccountQueryArgsSchema, location="query")
    @blp.response(200, AccountPageSchema)
    def get(self, args, brand_id):
        """List the brand's social accounts

        Every account the brand connected, disconnected ones included (health `revoked`), so
        their history stays readable. Filter by `network` or `health`.
        """
        brand = _brand(brand_id, "accounts.read")
        stmt = accounts.list_statement(
            brand.id, network=args.get("network"), health=args.get("health")
        )
        return paginate(stmt, SocialAccount.id, args)

    @idempotent
    @_reach_first("accounts.manage")
    @blp.arguments(DirectConnectSchema)
    @blp.response(201, AccountSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(
        422,
        response="UNPROCESSABLE_ENTITY",
        description="Invalid input, or the network refused the credentials",
    )
    @blp.doc(operationId="connectAccount")
    @blp.alt_response(502, response="BAD_GATEWAY", description="The network did not answer")
    def post(self, data, brand_id):
        """Connect an account with credentials (Bluesky, Mastodon)

        Bluesky: `handle` and an app password (and `pds_url` for a self-hosted PDS); the
        password opens a session and is never stored. Mastodon: `instance_url` and an access
        token made in the instance's Development settings. The credentials are checked with
        the network before anything is saved. An account the brand already had is reconnected
        in place.
        """
        brand = _brand(brand_id, "accounts.manage")
        account = accounts.connect_direct(brand, current_principal(), data, actor=current_actor())
        send_etag(account)
        return account


@blp.route("/connect")
class AccountConnect(MethodView):
    @blp.doc(operationId="startAccountConnection")
    @_reach_first("accounts.manage")
    @blp.arguments(ConnectSchema)
    @blp.response(200, AuthorizationSchema)
    @blp.alt_response(502, response="BAD_GATEWAY", description="The instance did not answer")
    def post(self, data, brand_id):
        """Start connecting an account through OAuth (Mastodon, LinkedIn, X, Facebook, Instagram)

        Returns the network's authorization URL. The `state` in it is bound to this brand and
        to you, works once and expires (`expires_at`); PKCE is used where the network supports
        it. After the person approves, the network sends the browser to the configured
        redirect URI with `code` and `state`: post both to `…/accounts/callback`.
        """
        brand = _brand(brand_id, "accounts.manage")
        return accounts.start_authorization(
            brand,
            current_principal(),
            data["network"],
            instance_url=data.get("instance_url"),
            account_kind=data.get("account_kind"),
        )


@blp.route("/callback")
class AccountCallback(MethodView):
    @_reach_first("accounts.manage")
    @blp.arguments(CallbackSchema)
    @blp.response(200, AccountListSchema)
    @blp.alt_response(409, response="CONFLICT", description="This state was already used")
    @blp.alt_response(
        422,
        response="UNPROCESSABLE_ENTITY",
        description="Unknown or expired state, or the network refused the code",
    )
    @blp.doc(operationId="finishAccountConnection")
    @blp.alt_response(502, response="BAD_GATEWAY", description="The network did not answer")
    def post(self, data, brand_id):
        """Finish an OAuth connection: exchange the code

        Send the `code` and `state` (or the `error`) the network sent back. The state must be
        one you started on this brand, unused and unexpired. Returns the connected accounts:
        one, or one per page for LinkedIn organizations, Facebook and Instagram.
        """
        brand = _brand(brand_id, "accounts.manage")
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
    @blp.doc(operationId="getAccount")
    @blp.response(200, AccountSchema, headers=ETAG_HEADER_DOC)
    def get(self, brand_id, account_id):
        """One social account

        Its network identity, health and display settings; never its credentials.
        """
        _, account = _account(brand_id, account_id, "accounts.read")
        send_etag(account)
        return account

    @blp.doc(operationId="updateAccount")
    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @_reach_first("accounts.manage")
    @blp.arguments(AccountUpdateSchema)
    @blp.response(200, AccountSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale")
    def patch(self, changes, brand_id, account_id):
        """Change an account's display settings

        Your `label` for it and its `color` in calendars. Send the ETag you read as `If-Match`
        to be sure not to overwrite someone else's change.
        """
        _, account = _account(brand_id, account_id, "accounts.manage")
        check_if_match(account)
        accounts.update_display(account, changes, actor=current_actor())
        send_etag(account)
        return account

    @blp.doc(operationId="disconnectAccount")
    @blp.response(204)
    def delete(self, brand_id, account_id):
        """Disconnect an account

        Revokes the credentials at the network where it allows (best effort) and forgets them
        here. The account stays listed with health `revoked`, with its history; reconnect it
        with `POST …/reconnect`.
        """
        _, account = _account(brand_id, account_id, "accounts.manage")
        accounts.disconnect(account, actor=current_actor())


@blp.route("/<id(acc):account_id>/reconnect")
class AccountReconnect(MethodView):
    @_reach_first("accounts.manage")
    @blp.arguments(ReconnectSchema)
    @blp.response(200, ReconnectResultSchema)
    @blp.alt_response(
        409, response="CONFLICT", description="The credentials belong to another network account"
    )
    @blp.alt_response(
        422,
        response="UNPROCESSABLE_ENTITY",
        description="Missing credentials, or the network refused them",
    )
    @blp.doc(operationId="reconnectAccount")
    @blp.alt_response(502, response="BAD_GATEWAY", description="The network did not answer")
    def post(self, data, brand_id, account_id):
        """Reconnect an account, keeping its history

        Bluesky takes a new app password (and Mastodon may take a new access token): the
        account is reconnected at once. OAuth networks return an `authorization` to finish
        through `…/accounts/callback`, which must sign in as the same network account.
        """
        brand, account = _account(brand_id, account_id, "accounts.manage")
        result = accounts.reconnect(
            brand, current_principal(), account, data, actor=current_actor()
        )
        return {"account": result.account, "authorization": result.authorization}
