"""What OAuth 2 authorization-code networks share: authorize URL, code exchange, refresh and
revocation through Authlib, with the endpoints each subclass reads from configuration."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, ClassVar

from authlib.integrations.httpx_client import OAuth2Client

from app.networks import http
from app.networks.base import (
    AuthorizationRequest,
    ConnectedAccount,
    Connector,
    NetworkError,
    NotSupported,
    TokenSet,
)

logger = logging.getLogger(__name__)


class OAuth2Connector(Connector):
    uses_oauth = True
    # How the token endpoint wants the client authenticated (RFC 6749 §2.3).
    token_auth_method: ClassVar[str] = "client_secret_post"
    scope_separator: ClassVar[str] = " "

    # -- endpoints and client, from configuration ----------------------------------------------

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        raise NotImplementedError

    # The configuration variable naming our app's client id, for networks with one global app.
    client_id_setting: ClassVar[str | None] = None

    def missing_configuration(self) -> str | None:
        from flask import current_app

        setting = self.client_id_setting
        return setting if setting and not current_app.config.get(setting) else None

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        raise NotImplementedError

    def token_endpoint(self, instance_url: str | None) -> str:
        raise NotImplementedError

    def revoke_endpoint(self, instance_url: str | None) -> str | None:
        return None

    def scopes(self, account_kind: str | None) -> list[str]:
        raise NotImplementedError

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        """The account (or pages) these fresh tokens give access to."""
        raise NotImplementedError

    user_given_urls: ClassVar[bool] = False

    def _oauth(self, client_id: str, client_secret: str, **options: Any) -> OAuth2Client:
        return http.oauth_client(
            user_given=self.user_given_urls,
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=self.token_auth_method,
            revocation_endpoint_auth_method=self.token_auth_method,
            code_challenge_method="S256" if self.supports_pkce else None,
            **options,
        )

    # -- the flow --------------------------------------------------------------------------------

    def authorization_url(self, request: AuthorizationRequest) -> str:
        client_id, client_secret = self.client_credentials(request)
        with self._oauth(client_id, client_secret) as oauth:
            url, _ = oauth.create_authorization_url(
                self.authorize_endpoint(request),
                state=request.state,
                code_verifier=request.code_verifier if self.supports_pkce else None,
                redirect_uri=request.redirect_uri,
                scope=self.scope_separator.join(self.scopes(request.account_kind)),
            )
        return url

    def fetch_token(self, request: AuthorizationRequest, code: str) -> dict[str, Any]:
        client_id, client_secret = self.client_credentials(request)
        extra: dict[str, Any] = {}
        if self.supports_pkce and request.code_verifier:
            extra["code_verifier"] = request.code_verifier
        with http.translated_errors(), self._oauth(client_id, client_secret) as oauth:
            token = oauth.fetch_token(
                self.token_endpoint(request.instance_url),
                grant_type="authorization_code",
                code=code,
                redirect_uri=request.redirect_uri,
                **extra,
            )
        if not token.get("access_token"):
            raise NetworkError("the token endpoint answered without an access token")
        return dict(token)

    def exchange_code(self, request: AuthorizationRequest, code: str) -> list[ConnectedAccount]:
        token = self.fetch_token(request, code)
        try:
            with http.translated_errors():
                return self.identities(token, request)
        except NetworkError:
            # The fresh token is about to be dropped: revoke it, so that no working grant is
            # left at the network that nobody holds or can revoke later.
            self._revoke_unused(token, request)
            raise

    def unused_token_secrets(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> dict[str, Any]:
        """The secrets `revoke` needs for a token that was never stored."""
        return self.token_set(token).secrets

    def _revoke_unused(self, token: dict[str, Any], request: AuthorizationRequest) -> None:
        try:
            self.revoke(self.unused_token_secrets(token, request), request.instance_url)
        except NetworkError as exc:
            logger.warning("could not revoke an unused %s token: %s", self.network, exc)

    def token_set(self, token: dict[str, Any], **secrets: Any) -> TokenSet:
        values = {
            "access_token": token["access_token"],
            "token_type": token.get("token_type", "Bearer"),
        }
        if token.get("refresh_token"):
            values["refresh_token"] = token["refresh_token"]
        values.update(secrets)
        expires_at = None
        if token.get("expires_at"):
            expires_at = datetime.fromtimestamp(int(token["expires_at"]), UTC)
        scope = token.get("scope")
        scopes = None
        if isinstance(scope, str) and scope:
            scopes = [s for s in scope.replace(",", " ").split() if s]
        return TokenSet(secrets=values, expires_at=expires_at, scopes=scopes)

    def refresh(self, secrets: dict[str, Any], instance_url: str | None) -> TokenSet:
        if not secrets.get("refresh_token"):
            raise NotSupported(f"{self.network} gave no refresh token; reconnect instead.")
        client_id, client_secret = self.stored_client_credentials(secrets)
        with http.translated_errors(), self._oauth(client_id, client_secret) as oauth:
            token = oauth.refresh_token(
                self.token_endpoint(instance_url), refresh_token=secrets["refresh_token"]
            )
        kept = {k: v for k, v in secrets.items() if k not in ("access_token", "refresh_token")}
        # Networks that do not rotate refresh tokens leave it out of the answer: keep ours.
        token = dict(token)
        token.setdefault("refresh_token", secrets["refresh_token"])
        return self.token_set(token, **kept)

    def stored_client_credentials(self, secrets: dict[str, Any]) -> tuple[str, str]:
        return self.client_credentials(None)

    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        endpoint = self.revoke_endpoint(instance_url)
        if endpoint is None:
            return
        client_id, client_secret = self.stored_client_credentials(secrets)
        # Revoking the refresh token ends the whole grant where the network supports it.
        token = secrets.get("refresh_token") or secrets["access_token"]
        hint = "refresh_token" if secrets.get("refresh_token") else "access_token"
        with http.translated_errors(), self._oauth(client_id, client_secret) as oauth:
            response = oauth.revoke_token(endpoint, token=token, token_type_hint=hint)
        http.check_response(response)

    def bearer_get(self, url: str, access_token: str, **params: Any) -> dict[str, Any]:
        with http.translated_errors(), http.client(user_given=self.user_given_urls) as c:
            response = c.get(
                url, params=params or None, headers={"Authorization": f"Bearer {access_token}"}
            )
            return http.json_of(response)
