"""Meta (https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow/):
Facebook Pages and Instagram Business accounts, both reached through Facebook Login.

The code is exchanged for a user token, then for a long-lived one (60 days); the pages the person
manages come with page tokens derived from it, which do not expire. One Relais account per page
(Facebook) or per page's linked Instagram Business account (Instagram). Meta has no refresh
tokens. Disconnecting one page forgets its token but does not deauthorize the whole app
(DELETE /me/permissions would cut every other page the person connected too).
"""

from __future__ import annotations

from typing import Any, ClassVar

from flask import current_app

from app.networks import http
from app.networks.base import (
    AuthorizationRequest,
    ConnectedAccount,
    Identity,
    NetworkError,
    TokenSet,
)
from app.networks.oauth import OAuth2Connector


class MetaConnector(OAuth2Connector):
    supports_pkce = True
    scope_separator = ","
    client_id_setting = "META_APP_ID"
    scope_list: ClassVar[list[str]] = []

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        return current_app.config["META_APP_ID"], current_app.config["META_APP_SECRET"]

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        return current_app.config["META_AUTHORIZE_URL"]

    def token_endpoint(self, instance_url: str | None) -> str:
        return f"{self._graph()}/oauth/access_token"

    def scopes(self, account_kind: str | None) -> list[str]:
        return self.scope_list

    def can_refresh(self, secrets: dict[str, Any]) -> bool:
        return False

    def _graph(self) -> str:
        return current_app.config["META_GRAPH_URL"]

    def _long_lived(self, short_token: str) -> dict[str, Any]:
        client_id, client_secret = self.client_credentials(None)
        with http.translated_errors(), http.client() as c:
            return http.json_of(
                c.post(
                    f"{self._graph()}/oauth/access_token",
                    data={
                        "grant_type": "fb_exchange_token",
                        "client_id": client_id,
                        "client_secret": client_secret,
                        "fb_exchange_token": short_token,
                    },
                )
            )

    def _pages(self, user_token: str) -> list[dict[str, Any]]:
        body = self.bearer_get(
            f"{self._graph()}/me/accounts",
            user_token,
            fields="id,name,access_token,instagram_business_account{id,username,name}",
        )
        return [p for p in body.get("data") or [] if p.get("id") and p.get("access_token")]

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        long_lived = self._long_lived(token["access_token"])
        user_token = long_lived.get("access_token") or token["access_token"]
        accounts = [
            account
            for page in self._pages(user_token)
            if (account := self.account_for_page(page)) is not None
        ]
        if not accounts:
            raise NetworkError(self.nothing_found)
        return accounts

    nothing_found: ClassVar[str] = ""

    def account_for_page(self, page: dict[str, Any]) -> ConnectedAccount | None:
        raise NotImplementedError

    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        return None


class FacebookConnector(MetaConnector):
    network = "facebook"
    display_name = "Facebook"
    scope_list: ClassVar[list[str]] = [
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_posts",
    ]
    nothing_found = "this Facebook user manages no page"

    def account_for_page(self, page: dict[str, Any]) -> ConnectedAccount | None:
        identity = Identity(
            external_id=str(page["id"]),
            handle=page.get("name") or str(page["id"]),
            display_name=page.get("name"),
            account_kind="page",
        )
        return ConnectedAccount(identity, TokenSet(secrets={"access_token": page["access_token"]}))

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        body = self.bearer_get(f"{self._graph()}/me", secrets["access_token"], fields="id,name")
        name = body.get("name")
        return Identity(str(body["id"]), name or str(body["id"]), name, "page")


class InstagramConnector(MetaConnector):
    network = "instagram"
    display_name = "Instagram"
    scope_list: ClassVar[list[str]] = [
        "pages_show_list",
        "pages_read_engagement",
        "business_management",
        "instagram_basic",
        "instagram_content_publish",
    ]
    nothing_found = "none of this person's Facebook pages has an Instagram Business account"

    def account_for_page(self, page: dict[str, Any]) -> ConnectedAccount | None:
        ig = page.get("instagram_business_account") or {}
        if not ig.get("id"):
            return None
        identity = Identity(
            external_id=str(ig["id"]),
            handle=f"@{ig.get('username') or ig['id']}",
            display_name=ig.get("name") or ig.get("username"),
            account_kind="business",
        )
        secrets = {"access_token": page["access_token"], "page_id": str(page["id"])}
        return ConnectedAccount(identity, TokenSet(secrets=secrets))

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        page = self.bearer_get(
            f"{self._graph()}/{secrets['page_id']}",
            secrets["access_token"],
            fields="id,instagram_business_account{id,username,name}",
        )
        account = self.account_for_page({**page, "access_token": secrets["access_token"]})
        if account is None:
            raise NetworkError("the page has no Instagram Business account any more")
        return account.identity
