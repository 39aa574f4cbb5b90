"""LinkedIn (https://learn.microsoft.com/linkedin/): 3-legged OAuth 2 for a member, or for the
organization pages the member administers.

Members are identified through OpenID Connect userinfo; pages through the organization ACLs
(one account per administered page). Refresh tokens exist only for approved partners; without
one the account turns `expiring` before its 60 days run out. LinkedIn offers PKCE only to
native clients, so web connections use the client secret alone.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.networks import http
from app.networks.base import AuthorizationRequest, ConnectedAccount, Identity, NetworkError
from app.networks.oauth import OAuth2Connector

REST_HEADERS = {"LinkedIn-Version": "202411", "X-Restli-Protocol-Version": "2.0.0"}

MEMBER_SCOPES = ["openid", "profile", "w_member_social"]
ORGANIZATION_SCOPES = ["openid", "profile", "r_organization_admin", "w_organization_social"]


class LinkedInConnector(OAuth2Connector):
    network = "linkedin"
    display_name = "LinkedIn"
    client_id_setting = "LINKEDIN_CLIENT_ID"
    account_kinds = ("member", "organization")

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        cfg = current_app.config
        return cfg["LINKEDIN_CLIENT_ID"], cfg["LINKEDIN_CLIENT_SECRET"]

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        return f"{current_app.config['LINKEDIN_OAUTH_URL']}/authorization"

    def token_endpoint(self, instance_url: str | None) -> str:
        return f"{current_app.config['LINKEDIN_OAUTH_URL']}/accessToken"

    def revoke_endpoint(self, instance_url: str | None) -> str | None:
        return f"{current_app.config['LINKEDIN_OAUTH_URL']}/revoke"

    def scopes(self, account_kind: str | None) -> list[str]:
        return ORGANIZATION_SCOPES if account_kind == "organization" else MEMBER_SCOPES

    def _api(self) -> str:
        return current_app.config["LINKEDIN_API_URL"]

    def _member(self, access_token: str) -> Identity:
        body = self.bearer_get(f"{self._api()}/v2/userinfo", access_token)
        if not body.get("sub"):
            raise NetworkError("userinfo answered without a member id")
        name = body.get("name") or " ".join(
            p for p in (body.get("given_name"), body.get("family_name")) if p
        )
        return Identity(
            external_id=f"urn:li:person:{body['sub']}",
            handle=name or body["sub"],
            display_name=name or None,
            account_kind="member",
        )

    def _organizations(self, access_token: str) -> list[Identity]:
        acls = self.bearer_get(
            f"{self._api()}/rest/organizationAcls",
            access_token,
            q="roleAssignee",
            role="ADMINISTRATOR",
            state="APPROVED",
        )
        found = []
        for element in acls.get("elements") or []:
            urn = str(element.get("organization") or "")
            if not urn.startswith("urn:li:organization:"):
                continue
            org_id = urn.rsplit(":", 1)[1]
            org = self.bearer_get(f"{self._api()}/rest/organizations/{org_id}", access_token)
            name = org.get("localizedName") or org.get("vanityName") or urn
            found.append(
                Identity(
                    external_id=urn,
                    handle=org.get("vanityName") or name,
                    display_name=name,
                    account_kind="organization",
                )
            )
        return found

    def bearer_get(self, url: str, access_token: str, **params: Any) -> dict[str, Any]:
        # The versioned /rest API needs its headers; /v2 ignores them.
        with http.translated_errors(), http.client() as c:
            response = c.get(
                url,
                params=params or None,
                headers={"Authorization": f"Bearer {access_token}", **REST_HEADERS},
            )
            return http.json_of(response)

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        tokens = self.token_set(token)
        if request.account_kind == "organization":
            identities = self._organizations(tokens.secrets["access_token"])
            if not identities:
                raise NetworkError("this LinkedIn member administers no organization page")
        else:
            identities = [self._member(tokens.secrets["access_token"])]
        return [ConnectedAccount(identity, tokens) for identity in identities]

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        return self._member(secrets["access_token"])

    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        # LinkedIn's revoke endpoint takes the client credentials and the token in the form
        # body (not HTTP Basic), and only access tokens.
        client_id, client_secret = self.client_credentials(None)
        with http.translated_errors(), http.client() as c:
            response = c.post(
                self.revoke_endpoint(None) or "",
                data={
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "token": secrets["access_token"],
                },
            )
        http.check_response(response)
