"""Mastodon (https://docs.joinmastodon.org/): OAuth on the user's own instance, or a token made
in the instance's Development settings.

Our app is registered once per instance (POST /api/v1/apps); the services cache the client id
and secret and pass them in `AuthorizationRequest.extra`. Mastodon tokens do not expire and come
without refresh tokens; PKCE (S256) is supported since Mastodon 4.3 and ignored by older ones.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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


class MastodonConnector(OAuth2Connector):
    network = "mastodon"
    supports_pkce = True
    user_given_urls = True

    # -- the account services' hooks (see Connector) -------------------------------------------
    display_name = "Mastodon"
    per_instance = True
    registers_app_per_instance = True

    def app_scopes(self) -> str:
        return current_app.config["MASTODON_SCOPES"]

    def reconnects_with_credentials(self, data: dict[str, Any]) -> bool:
        # A new token from the Development settings, or else OAuth again.
        return bool(data.get("access_token"))

    def register_app(self, instance_url: str, redirect_uri: str, scopes: str) -> tuple[str, str]:
        """POST /api/v1/apps: our client id and secret on this instance."""
        payload = {
            "client_name": current_app.config["MASTODON_APP_NAME"],
            "redirect_uris": redirect_uri,
            "scopes": scopes,
        }
        if current_app.config.get("MASTODON_APP_WEBSITE"):
            payload["website"] = current_app.config["MASTODON_APP_WEBSITE"]
        with http.translated_errors(), http.client(user_given=True) as c:
            body = http.json_of(c.post(f"{instance_url}/api/v1/apps", data=payload))
        if not body.get("client_id") or not body.get("client_secret"):
            raise NetworkError("the instance registered no client id and secret")
        return str(body["client_id"]), str(body["client_secret"])

    def scopes(self, account_kind: str | None) -> list[str]:
        return current_app.config["MASTODON_SCOPES"].split()

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        assert request is not None
        return request.extra["client_id"], request.extra["client_secret"]

    def stored_client_credentials(self, secrets: dict[str, Any]) -> tuple[str, str]:
        return secrets["client_id"], secrets["client_secret"]

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        return f"{request.instance_url}/oauth/authorize"

    def token_endpoint(self, instance_url: str | None) -> str:
        return f"{instance_url}/oauth/token"

    def revoke_endpoint(self, instance_url: str | None) -> str | None:
        return f"{instance_url}/oauth/revoke"

    def can_refresh(self, secrets: dict[str, Any]) -> bool:
        return False

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        client_id, client_secret = self.client_credentials(request)
        tokens = self.token_set(token, client_id=client_id, client_secret=client_secret)
        identity = self.verify(tokens.secrets, request.instance_url)
        limits = self.instance_limits(request.instance_url or "")
        return [ConnectedAccount(identity, tokens, request.instance_url, limits)]

    def connect_direct(self, data: dict[str, Any]) -> ConnectedAccount:
        secrets = {"access_token": data["access_token"], "token_type": "Bearer"}
        identity = self.verify(secrets, data["instance_url"])
        limits = self.instance_limits(data["instance_url"])
        return ConnectedAccount(identity, TokenSet(secrets=secrets), data["instance_url"], limits)

    def instance_limits(self, instance_url: str) -> dict[str, int]:
        """The instance's own limits (GET /api/v2/instance `configuration`), best effort:
        an instance that does not say keeps Mastodon's defaults."""
        try:
            with http.translated_errors(), http.client(user_given=True) as c:
                body = http.json_of(c.get(f"{instance_url}/api/v2/instance"))
        except NetworkError:
            return {}
        configuration = body.get("configuration") or {}
        statuses = configuration.get("statuses") or {}
        media = configuration.get("media_attachments") or {}
        found = {
            "max_characters": statuses.get("max_characters"),
            "max_media_attachments": statuses.get("max_media_attachments"),
            "characters_reserved_per_url": statuses.get("characters_reserved_per_url"),
            "image_size_limit": media.get("image_size_limit"),
            "video_size_limit": media.get("video_size_limit"),
        }
        return {
            key: value
            for key, value in found.items()
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
        }

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        body = self.bearer_get(
            f"{instance_url}/api/v1/accounts/verify_credentials", secrets["access_token"]
        )
        host = urlsplit(instance_url or "").hostname or ""
        username = str(body.get("username") or body.get("acct") or "")
        if not body.get("id") or not username:
            raise NetworkError("verify_credentials answered without an account id")
        # Numeric ids are only unique within one instance.
        return Identity(
            external_id=f"{body['id']}@{host}",
            handle=f"@{username}@{host}",
            display_name=body.get("display_name") or None,
        )

    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        # A token pasted from the Development settings was not issued to our app: only the
        # person can revoke it, there.
        if not secrets.get("client_id"):
            return
        super().revoke(secrets, instance_url)
