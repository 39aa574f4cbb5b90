"""LinkedIn (https://learn.microsoft.com/linkedin/): 3-legged OAuth 2 for a member, or for the
organization pages the member administers.

Members are identified through OpenID Connect userinfo; pages through the organization ACLs
(one account per administered page). Refresh tokens exist only for approved partners; without
one the account turns `expiring` before its 60 days run out. LinkedIn offers PKCE only to
native clients, so web connections use the client secret alone.

Publishing goes through the versioned Posts API (POST /rest/posts; the new post's URN comes
back in the `x-restli-id` header), as the member or as the organization. Pictures go up
through the Images API (initializeUpload, then a PUT of the bytes to the URL it gives), videos
through the Videos API (initializeUpload, PUT of each part, finalizeUpload); both are polled
until LinkedIn says AVAILABLE. LinkedIn has no idempotency key: `find_existing` reads the
author's recent posts (GET /rest/posts?q=author), which LinkedIn allows for organizations
(r_organization_social) but not for members without the restricted r_member_social.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from flask import current_app

from app.networks import http
from app.networks.base import (
    AuthorizationRequest,
    ConnectedAccount,
    ContentRejected,
    CredentialsRejected,
    Identity,
    MediaItem,
    NetworkAccount,
    NetworkError,
    NotSupported,
    OutcomeUnknown,
    Published,
    PublishRequest,
    TokenExpired,
    same_text,
)
from app.networks.oauth import OAuth2Connector

REST_HEADERS = {"LinkedIn-Version": "202411", "X-Restli-Protocol-Version": "2.0.0"}

MEMBER_SCOPES = ["openid", "profile", "w_member_social"]
# r_organization_social lets `find_existing` read the page's own posts back.
ORGANIZATION_SCOPES = [
    "openid",
    "profile",
    "r_organization_admin",
    "w_organization_social",
    "r_organization_social",
]


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

    # -- publishing ------------------------------------------------------------------------------

    clock_skew: ClassVar[timedelta] = timedelta(minutes=5)
    search_pages: ClassVar[int] = 3

    def _headers(self, account: NetworkAccount, **extra: str) -> dict[str, str]:
        bearer = {"Authorization": f"Bearer {account.secrets['access_token']}"}
        return {**bearer, **REST_HEADERS, **extra}

    def publish(self, account: NetworkAccount, request: PublishRequest) -> Published:
        self.check_token_fresh(account)
        author = account.external_id
        headers = self._headers(account)
        with http.client() as c:
            uploaded = [(self._upload(c, account, item), item) for item in request.media]
            payload: dict[str, Any] = {
                "author": author,
                "commentary": little_text(request.text_with_link()),
                "visibility": "PUBLIC",
                "distribution": {
                    "feedDistribution": "MAIN_FEED",
                    "targetEntities": [],
                    "thirdPartyDistributionChannels": [],
                },
                "lifecycleState": "PUBLISHED",
                "isReshareDisabledByAuthor": False,
            }
            if len(uploaded) == 1:
                urn, item = uploaded[0]
                payload["content"] = {"media": {"id": urn, **_alt(item)}}
            elif uploaded:
                images = [{"id": urn, **_alt(item)} for urn, item in uploaded]
                payload["content"] = {"multiImage": {"images": images}}
            response = http.send(
                c, "POST", f"{self._api()}/rest/posts", creates=True, json=payload, headers=headers
            )
            if not response.is_success:
                raise self._failure(response, account, creates=True)
        urn = response.headers.get("x-restli-id", "")
        if not urn.startswith("urn:li:"):
            # Created (2xx) without saying which: the post is somewhere, find it.
            raise OutcomeUnknown("LinkedIn created the post without returning its URN")
        return Published(
            external_id=urn,
            url=f"https://www.linkedin.com/feed/update/{urn}/",
            published_at=datetime.now(UTC),
        )

    def _upload(self, c: httpx.Client, account: NetworkAccount, item: MediaItem) -> str:
        """initializeUpload, PUT the bytes, finalize (videos), wait until AVAILABLE."""
        api, headers = self._api(), self._headers(account)
        kind = "videos" if item.is_video else "images"
        init: dict[str, Any] = {"owner": account.external_id}
        if item.is_video:
            init.update(fileSizeBytes=item.size_bytes, uploadCaptions=False, uploadThumbnail=False)
        started = self._ok(
            account,
            http.send(
                c,
                "POST",
                f"{api}/rest/{kind}",
                params={"action": "initializeUpload"},
                json={"initializeUploadRequest": init},
                headers=headers,
            ),
        )
        value = started.get("value") or {}
        urn = str(value.get("video" if item.is_video else "image") or "")
        if not urn:
            raise NetworkError("LinkedIn answered the upload without a media URN")
        upload_headers = {"Authorization": headers["Authorization"]}
        with item.open() as stream:
            if not item.is_video:
                url = str(value.get("uploadUrl"))
                response = http.send(c, "PUT", url, content=stream.read(), headers=upload_headers)
                if not response.is_success:
                    raise self._failure(response, account)
            else:
                etags = []
                for part in value.get("uploadInstructions") or []:
                    first, last = int(part["firstByte"]), int(part["lastByte"])
                    stream.seek(first)
                    response = http.send(
                        c,
                        "PUT",
                        str(part["uploadUrl"]),
                        content=stream.read(last - first + 1),
                        headers={**upload_headers, "Content-Type": "application/octet-stream"},
                    )
                    if not response.is_success:
                        raise self._failure(response, account)
                    etags.append(response.headers.get("etag", ""))
                self._ok(
                    account,
                    http.send(
                        c,
                        "POST",
                        f"{api}/rest/videos",
                        params={"action": "finalizeUpload"},
                        json={
                            "finalizeUploadRequest": {
                                "video": urn,
                                "uploadToken": value.get("uploadToken") or "",
                                "uploadedPartIds": etags,
                            }
                        },
                        headers=headers,
                    ),
                    empty=True,
                )

        def available() -> str | None:
            state = self._ok(
                account,
                http.send(c, "GET", f"{api}/rest/{kind}/{quote(urn, safe='')}", headers=headers),
            )
            status = state.get("status")
            if status == "AVAILABLE":
                return urn
            if status in ("PROCESSING_FAILED", "CLIENT_ERROR"):
                raise ContentRejected(
                    f"LinkedIn could not process the {kind[:-1]} "
                    f"({state.get('processingFailureReason') or status})"
                )
            return None

        return http.wait_until_ready(
            available, urn, every=self.media_poll_seconds, limit=self.media_wait_seconds
        )

    def _ok(
        self, account: NetworkAccount, response: httpx.Response, *, empty: bool = False
    ) -> dict[str, Any]:
        if not response.is_success:
            raise self._failure(response, account)
        if empty and not response.content:
            return {}
        return http.answer_json(response)

    def _failure(
        self, response: httpx.Response, account: NetworkAccount, *, creates: bool = False
    ) -> NetworkError:
        body = http.error_body(response)
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or "")
        status = response.status_code
        if status == 401:
            if body.get("code") == "EXPIRED_ACCESS_TOKEN" and self.can_refresh(account.secrets):
                return TokenExpired(message or "the LinkedIn access token has expired", status=401)
            return CredentialsRejected(message or "LinkedIn refused the token", status=401)
        if status == 403:
            # A permission the token lacks (or a page the member no longer administers).
            return CredentialsRejected(message or "LinkedIn refused the request", status=403)
        return http.failed_publishing(response, message, creates=creates)

    def find_existing(
        self, account: NetworkAccount, request: PublishRequest, *, since: datetime
    ) -> Published | None:
        """The author's posts, newest first, back to the attempt's start: one with the same
        commentary and as many media items."""
        self.check_token_fresh(account)
        oldest_ms = (since - self.clock_skew).timestamp() * 1000
        expected = little_text(request.text_with_link())
        headers = self._headers(account, **{"X-RestLi-Method": "FINDER"})
        params: dict[str, Any] = {
            "q": "author",
            "author": account.external_id,
            "count": 20,
            "sortBy": "CREATED",
        }
        with http.client() as c:
            for page_number in range(self.search_pages):
                params["start"] = page_number * params["count"]
                response = http.send(
                    c, "GET", f"{self._api()}/rest/posts", params=params, headers=headers
                )
                if response.status_code == 403:
                    raise NotSupported(
                        "LinkedIn does not let this app read the author's posts back "
                        "(r_member_social is restricted): check the profile by hand"
                    )
                page = self._ok(account, response)
                elements = [e for e in page.get("elements") or [] if isinstance(e, dict)]
                for post in elements:
                    created = post.get("createdAt") or post.get("publishedAt") or 0
                    if not isinstance(created, int) or created < oldest_ms:
                        return None
                    if _media_count(post) == len(request.media) and same_text(
                        expected, str(post.get("commentary") or "")
                    ):
                        urn = str(post.get("id"))
                        return Published(
                            external_id=urn,
                            url=f"https://www.linkedin.com/feed/update/{urn}/",
                            published_at=datetime.fromtimestamp(created / 1000, UTC),
                        )
                if len(elements) < params["count"]:
                    return None
        return None

    def delete(self, account: NetworkAccount, external_id: str) -> None:
        self.check_token_fresh(account)
        headers = self._headers(account, **{"X-RestLi-Method": "DELETE"})
        with http.client() as c:
            url = f"{self._api()}/rest/posts/{quote(external_id, safe='')}"
            response = http.send(c, "DELETE", url, headers=headers)
        if response.status_code in (404, 410) or response.is_success:
            return
        raise self._failure(response, account)


# Characters the Posts API's "little text" format reserves; a literal one needs a backslash,
# else LinkedIn cuts the commentary short at it.
_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")
_HASHTAG = re.compile(r"(?<!\S)#(\w+)")


def little_text(text: str) -> str:
    """`text` as Posts API commentary: reserved characters escaped, hashtags as hashtags."""
    escaped = _RESERVED.sub(r"\\\1", text)
    return _HASHTAG.sub(lambda m: "{hashtag|\\#|" + m.group(1) + "}", escaped.replace("\\#", "#"))


def _alt(item: MediaItem) -> dict[str, str]:
    return {"altText": item.alt_text} if item.alt_text and not item.is_video else {}


def _media_count(post: dict[str, Any]) -> int:
    content = post.get("content") or {}
    if "multiImage" in content:
        return len((content["multiImage"] or {}).get("images") or [])
    return 1 if "media" in content else 0
