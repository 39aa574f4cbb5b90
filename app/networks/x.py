"""X (https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/): OAuth 2.0
authorization code with PKCE (required), confidential client (HTTP Basic on the token endpoint).

Access tokens live two hours; `offline.access` brings a refresh token, which X rotates on every
refresh, so the new one must be stored at once.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.networks.base import AuthorizationRequest, ConnectedAccount, Identity, NetworkError
from app.networks.oauth import OAuth2Connector

SCOPES = ["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"]


class XConnector(OAuth2Connector):
    network = "x"
    display_name = "X"
    client_id_setting = "X_CLIENT_ID"
    supports_pkce = True
    token_auth_method = "client_secret_basic"

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        return current_app.config["X_CLIENT_ID"], current_app.config["X_CLIENT_SECRET"]

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        return current_app.config["X_AUTHORIZE_URL"]

    def token_endpoint(self, instance_url: str | None) -> str:
        return f"{current_app.config['X_API_URL']}/2/oauth2/token"

    def revoke_endpoint(self, instance_url: str | None) -> str | None:
        return f"{current_app.config['X_API_URL']}/2/oauth2/revoke"

    def scopes(self, account_kind: str | None) -> list[str]:
        return SCOPES

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        tokens = self.token_set(token)
        return [ConnectedAccount(self.verify(tokens.secrets, None), tokens)]

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        api = current_app.config["X_API_URL"]
        body = self.bearer_get(f"{api}/2/users/me", secrets["access_token"])
        user = body.get("data") or {}
        if not user.get("id") or not user.get("username"):
            raise NetworkError("users/me answered without a user")
        return Identity(
            external_id=str(user["id"]),
            handle=f"@{user['username']}",
            display_name=user.get("name") or None,
        )
